"""Electronic archiving (SAE): SEDA 2.x messages, SIP packaging, As@lae client and simulator."""
