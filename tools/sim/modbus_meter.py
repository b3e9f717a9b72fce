"""Simulated Modbus power meters: a pymodbus server serving one or more meters (slave ids).

Each simulated meter speaks the register map of a built-in or custom model (the same
`MeterModel` the poller decodes, encoded by the same codec, `evcore.modbus`), so a value set
here is what the poller must read back:

    sim = MeterSimulator(port=0)                  # or rtu=True for RTU-over-TCP framing
    meter = sim.add_meter(BUILTIN_MODELS[PM5320], slave_id=1)
    meter.set(currents=(40, 35, 30), energy_wh=1_234_567)
    await sim.start()                              # sim.port is the bound port
    ...
    meter.silent = True                            # stops answering (requests time out)
    await sim.stop()                               # drops every connection
    await sim.start()                              # same port again

Registers outside the model's span answer "illegal data address"; writes are refused. The
bench helpers at the end build N meters (and the pool that polls them) against simulators.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from pymodbus.datastore import ModbusServerContext
from pymodbus.datastore.context import ModbusBaseSlaveContext
from pymodbus.exceptions import NoSuchSlaveException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer

from custom_components.ev_charging_expert.evcore.clock import SystemClock
from custom_components.ev_charging_expert.evcore.meters import (
    BUILTIN_MODELS,
    PM5320,
    MeterConfig,
    MeterModel,
    MeterPool,
    MeterProtocol,
    ModelRegistry,
    Quantity,
    RegisterFormat,
    RegisterType,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from custom_components.ev_charging_expert.evcore.clock import Clock
    from custom_components.ev_charging_expert.evcore.meters.models import RegisterSpec

DEFAULT_VOLTAGE = 230.0  # V phase-to-neutral, to derive powers from currents

_KIND = {RegisterType.HOLDING: "h", RegisterType.INPUT: "i"}
_PHASE_CURRENTS = (Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3)
_PHASE_POWERS = (Quantity.POWER_L1, Quantity.POWER_L2, Quantity.POWER_L3)


class _Keep:
    """Marks an argument of `SimulatedMeter.set` that was not given."""


KEEP = _Keep()


class SimulatedMeter:
    """The registers of one meter (one slave id), computed from values a test can change."""

    def __init__(
        self, model: MeterModel, slave_id: int, *, voltage: float = DEFAULT_VOLTAGE
    ) -> None:
        self.model = model
        self.slave_id = slave_id
        self.voltage = voltage
        self.silent = False
        """When True the meter does not answer at all (the poller times out)."""
        self.requests = 0
        self.values: dict[Quantity, float | None] = dict.fromkeys(Quantity, 0.0)
        self._registers: dict[tuple[str, int], int] = {}
        self._spans: dict[str, tuple[int, int]] = {}
        for spec in model.registers.values():
            kind = _KIND[RegisterType(spec.register_type)]
            start = model.wire_address(spec)
            stop = start + RegisterFormat(spec.format).size
            low, high = self._spans.get(kind, (start, stop))
            self._spans[kind] = (min(low, start), max(high, stop))
        self.context = _SlaveContext(self)
        self._write_all()

    @property
    def currents_a(self) -> tuple[float | None, ...]:
        """The simulated currents."""
        return tuple(self.values[q] for q in _PHASE_CURRENTS)

    def set(
        self,
        *,
        currents: Sequence[float | None] | None = None,
        powers: Sequence[float | None] | None = None,
        total_power_w: float | _Keep | None = KEEP,
        energy_wh: float | _Keep | None = KEEP,
    ) -> None:
        """Change values (A, W, Wh; None = "not available").

        New currents without powers derive the phase powers (current * voltage, power factor 1)
        and their total; pass `powers` or `total_power_w` to set them yourself.
        """
        if currents is not None:
            for quantity, value in zip(_PHASE_CURRENTS, currents, strict=True):
                self.values[quantity] = value
            if powers is None:
                powers = [None if i is None else i * self.voltage for i in currents]
                if isinstance(total_power_w, _Keep):
                    total_power_w = sum(p for p in powers if p is not None)
        if powers is not None:
            for quantity, value in zip(_PHASE_POWERS, powers, strict=True):
                self.values[quantity] = value
        if not isinstance(total_power_w, _Keep):
            self.values[Quantity.POWER_TOTAL] = total_power_w
        if not isinstance(energy_wh, _Keep):
            self.values[Quantity.ENERGY_DELIVERED] = energy_wh
        self._write_all()

    def add_energy(self, wh: float) -> None:
        """Advance the energy register (as a real meter does while power flows)."""
        energy = self.values[Quantity.ENERGY_DELIVERED] or 0.0
        self.set(energy_wh=energy + wh)

    def set_raw(self, quantity: Quantity, registers: Sequence[int]) -> None:
        """Write raw registers for `quantity` (to test decoding of odd values)."""
        spec = self.model.registers[quantity]
        self._write(spec, list(registers))

    def read(self, kind: str, address: int, count: int) -> list[int]:
        """The registers a read of `count` from wire address `address` returns."""
        return [self._registers.get((kind, a), 0) for a in range(address, address + count)]

    def in_span(self, kind: str, address: int, count: int) -> bool:
        """True when the whole read is inside the model's registers of that type."""
        span = self._spans.get(kind)
        return span is not None and span[0] <= address and address + count <= span[1]

    def _write_all(self) -> None:
        for quantity, spec in self.model.registers.items():
            self._write(spec, spec.encode(self.values.get(quantity)))

    def _write(self, spec: RegisterSpec, registers: list[int]) -> None:
        kind = _KIND[RegisterType(spec.register_type)]
        start = self.model.wire_address(spec)
        for offset, value in enumerate(registers):
            self._registers[kind, start + offset] = value


class _SlaveContext(ModbusBaseSlaveContext):
    """pymodbus datastore view of a SimulatedMeter (0-based wire addresses, read-only)."""

    def __init__(self, meter: SimulatedMeter) -> None:
        self._meter = meter

    def reset(self) -> None:
        """Nothing to reset."""

    def validate(self, fc_as_hex: int, address: int, count: int = 1) -> bool:
        if fc_as_hex not in (3, 4):
            return False  # read-only: writes get "illegal data address"
        return self._meter.in_span(self.decode(fc_as_hex), address, count)

    def getValues(self, fc_as_hex: int, address: int, count: int = 1) -> list[int]:  # noqa: N802
        self._meter.requests += 1
        return self._meter.read(self.decode(fc_as_hex), address, count)

    def setValues(self, fc_as_hex: int, address: int, values: Any) -> None:  # noqa: N802
        """Refused by `validate`."""


class _ServerContext(ModbusServerContext):
    """Slave ids to simulated meters; an unknown or silent slave does not answer."""

    def __init__(self, meters: dict[int, SimulatedMeter]) -> None:
        super().__init__(slaves={}, single=False)
        self._meters = meters

    def __getitem__(self, slave: int) -> _SlaveContext:
        meter = self._meters.get(slave)
        if meter is None or meter.silent:
            raise NoSuchSlaveException(f"slave {slave} does not answer")
        return meter.context

    def __contains__(self, slave: object) -> bool:
        return slave in self._meters

    def __iter__(self) -> Any:
        return iter((slave, meter.context) for slave, meter in self._meters.items())

    def slaves(self) -> list[int]:
        return list(self._meters)


class _Server(ModbusTcpServer):
    """ModbusTcpServer that counts the connections it accepts."""

    def __init__(self, *args: Any, on_connection: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_connection = on_connection

    def callback_new_connection(self) -> Any:
        self._on_connection()
        return super().callback_new_connection()


class MeterSimulator:
    """A Modbus TCP (or RTU-over-TCP) server with simulated meters behind it."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, rtu: bool = False) -> None:
        self.host = host
        self.port = port
        self.rtu = rtu
        self.meters: dict[int, SimulatedMeter] = {}
        self.connections_accepted = 0
        self._server: _Server | None = None

    def add_meter(self, model: MeterModel, slave_id: int = 1, **values: Any) -> SimulatedMeter:
        """Serve a meter of `model` at `slave_id`; keyword values go to `SimulatedMeter.set`."""
        if slave_id in self.meters:
            msg = f"slave id {slave_id} is already simulated"
            raise ValueError(msg)
        meter = SimulatedMeter(model, slave_id)
        if values:
            meter.set(**values)
        self.meters[slave_id] = meter
        return meter

    def meter(self, slave_id: int) -> SimulatedMeter:
        """The simulated meter at `slave_id`."""
        return self.meters[slave_id]

    @property
    def running(self) -> bool:
        """True while listening."""
        return self._server is not None

    @property
    def open_connections(self) -> int:
        """Client connections open right now."""
        return len(self._server.active_connections) if self._server is not None else 0

    async def start(self) -> None:
        """Listen on host:port (port 0: any free port, kept for later restarts)."""
        if self._server is not None:
            return
        server = _Server(
            _ServerContext(self.meters),
            framer=FramerType.RTU if self.rtu else FramerType.SOCKET,
            address=(self.host, self.port),
            ignore_missing_slaves=True,
            on_connection=self._count_connection,
        )
        await server.serve_forever(background=True)
        listener = server.transport
        if listener is None:
            msg = f"cannot listen on {self.host}:{self.port}"
            raise OSError(msg)
        self.port = listener.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._server = server

    async def stop(self) -> None:
        """Stop listening and drop every client connection."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()
            await asyncio.sleep(0)  # let the transports report their closing

    def _count_connection(self) -> None:
        self.connections_accepted += 1

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --- bench helpers -----------------------------------------------------------------------------


def bench_configs(
    count: int,
    endpoints: Sequence[tuple[str, int]],
    *,
    model: str = PM5320,
    polling_period: float = 0.5,
    timeout: float = 1.0,
    rtu: bool = False,
    prefix: str = "bench",
) -> list[MeterConfig]:
    """`count` meter configs spread round-robin over `endpoints`, slave ids 1, 2, ... each."""
    configs = []
    for index in range(count):
        host, port = endpoints[index % len(endpoints)]
        configs.append(
            MeterConfig(
                meter_id=f"{prefix}{index + 1}",
                name=f"Bench meter {index + 1}",
                model=model,
                protocol=MeterProtocol.RTU_OVER_TCP if rtu else MeterProtocol.TCP,
                host=host,
                port=port,
                slave_id=index // len(endpoints) + 1,
                polling_period=polling_period,
                timeout=timeout,
            )
        )
    return configs


@dataclass
class BenchRig:
    """Simulators plus the pool polling them; `await rig.stop()` tears everything down."""

    pool: MeterPool
    simulators: list[MeterSimulator] = field(default_factory=list)

    @property
    def polls(self) -> int:
        """Polls done so far, all meters."""
        return sum(meter.polls for meter in self.pool)

    @property
    def successes(self) -> int:
        """Successful polls so far, all meters."""
        return sum(meter.successes for meter in self.pool)

    async def stop(self) -> None:
        """Stop polling, then the simulators."""
        await self.pool.stop()
        for simulator in self.simulators:
            await simulator.stop()


async def start_simulators(
    count: int,
    *,
    gateways: int = 1,
    model: MeterModel | None = None,
    rtu: bool = False,
    host: str = "127.0.0.1",
) -> list[MeterSimulator]:
    """`gateways` simulators serving `count` meters in total (slave ids 1, 2, ... on each)."""
    model = model or BUILTIN_MODELS[PM5320]
    simulators = [MeterSimulator(host=host, rtu=rtu) for _ in range(gateways)]
    for index in range(count):
        simulators[index % gateways].add_meter(
            model, index // gateways + 1, currents=(10.0, 12.0, 14.0), energy_wh=1_000_000
        )
    for simulator in simulators:
        await simulator.start()
    return simulators


async def start_bench_rig(
    count: int = 20,
    *,
    gateways: int = 1,
    polling_period: float = 0.5,
    timeout: float = 1.0,
    model: MeterModel | None = None,
    rtu: bool = False,
    clock: Clock | None = None,
    endpoints: Iterable[tuple[str, int]] | None = None,
) -> BenchRig:
    """Build `count` meters polled every `polling_period` and start polling them.

    Without `endpoints`, in-process simulators are started (their CPU time then counts in the
    same process); give the endpoints of `tools/run_meters.py` processes to measure the poller
    alone (e.g. `run_meters.py --port 5020 --slave 1-20`).
    """
    model = model or BUILTIN_MODELS[PM5320]
    registry = ModelRegistry([] if model.builtin else [model])
    simulators: list[MeterSimulator] = []
    if endpoints is None:
        simulators = await start_simulators(count, gateways=gateways, model=model, rtu=rtu)
        targets = [(sim.host, sim.port) for sim in simulators]
    else:
        targets = list(endpoints)
    pool = MeterPool(clock or SystemClock(), registry)
    for config in bench_configs(
        count,
        targets,
        model=model.name,
        polling_period=polling_period,
        timeout=timeout,
        rtu=rtu,
    ):
        pool.add(config)
    pool.start()
    return BenchRig(pool, simulators)
