"""Export of the site's state and commands from outside, transport-free (MQTT glue: HA side).

`documents`: the JSON documents and their schemas; `exporter`: publish on change, coalesced per
object; `commands`: JSON-Schema-checked commands and their replies.
"""
