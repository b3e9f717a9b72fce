"""`make demo`: Home Assistant with EV Charging Expert and a fleet of simulated chargers.

    .venv/bin/python -m tools.demo [--check SECONDS] [--config-dir DIR] ...   (or `make demo`)

1. Prepares `demo_config/` (reused on later runs): a minimal configuration.yaml and a symlink
   to custom_components/ev_charging_expert.
2. Starts a simulated building meter: tools/run_meters.py (a Modbus TCP server, model
   "PM5320 / iEM3x5x / PowerTag", 127.0.0.1:5020, slave 1) as a child process. Every few
   seconds the demo sets its currents: the building's own load (a daily pattern of about
   20-60 A per phase, one day lasting 10 minutes) plus what the simulated EVs draw.
3. Starts Home Assistant on http://127.0.0.1:8123 (`python -m homeassistant -c demo_config`).
   It runs with `--skip-pip`: everything it needs is pinned in requirements.txt, so it never
   installs anything at runtime.
4. The first time, completes onboarding over the REST API (owner user demo / demo1234).
5. Adds the EV Charging Expert integration through the config-flow REST API, if not yet added,
   and, when it has no zone and no meter yet, through the subentry flows: the Modbus meter
   "Building meter", a dynamic zone "Building" (125 A per phase minus the building's own load
   that meter measures) and, below it, a static 100 A zone "Demo parking" that new stations
   are put in (a station in no zone gets no current). A demo_config/ of an older demo (only
   "Demo parking") gets the meter and "Building" added and "Demo parking" moved below it.
6. Runs the fleet simulator (12 chargers with 1 or 2 connectors) against the OCPP port.

Ctrl-C (or SIGTERM) stops the fleet, Home Assistant, then the meter simulator. `--check
SECONDS` runs that long, checks over the REST API that the integration's entities show live
values, that the meter's sensors show what the simulator serves and that the budget of
"Building" follows the building's load, and stops.

Modules: `ha_process` (demo_config/, the HA child process), `rest` (`HaApi`, the REST and
WebSocket calls), `building` (the building's load and the meter simulator), `scenario` (`Demo`,
the whole run), `__main__` (the command line).
"""
