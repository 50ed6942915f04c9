"""Secure mail: the file goes to a download portal; the agent gets an SMTP message with a
one-time, expiring link; the portal records the download (the read receipt)."""
