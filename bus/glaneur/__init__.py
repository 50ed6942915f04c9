"""The glaneur: drop folders (local or SFTP) whose items become documents of the Pastell
door, as the incumbent's glaneur connectors do (modes ZIP, FOLDER, VRAC; XML manifest,
file patterns and static metadata; ``action_ok``; sent and error folders). It is a
client of the door over HTTP: ``demat glaneur --config glaneurs.yaml``."""
