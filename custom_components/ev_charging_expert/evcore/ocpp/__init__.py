"""OCPP central system: websocket server, charge point handlers, metering."""
