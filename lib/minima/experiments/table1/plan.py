"""Table 1's plan: :class:`Settings` (notebook 40's parameters) and :func:`plan`, every run
of the table."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...data import TrainTest
from ...geometry.certificate import Rule
from .arms import ARMS, paper_schedule
from .matched import MATCHED, MatchedLossRun, cell, targets
from .protocols import PROTOCOLS, Converged, Regularised, per_batch
from .records import Table1Record
from .run import Table1Run
from .tasks import TaskRef


@dataclass(frozen=True)
class Settings:
    """Table 1 as notebook 40's parameters set it. The dict fields are keyed by task name
    (``"MNIST"``, ``"AG News"``); ``converged_lr`` and ``converged_max_epochs`` values may be
    dicts by batch size (:func:`per_batch`).

    ``sizes``: hidden units of the small and the large network; ``batch_sizes``: the paper's two;
    ``learning_rates``, ``max_epochs``: the paper's protocol (SGD; stop at 100 % training
    accuracy or after ``max_epochs``); ``schedule_scale``: factor on the growth epochs;
    ``train_examples``: the first N training examples of each class in its share (0: all, the
    trim); ``seeds``: one run per seed and cell (``large_seeds``: the large size's, when fewer,
    one tuple for every task or a dict by task: fewer seeds where the large size stops at the
    paper protocol's end points saves the page's time);
    ``hessian_subset``: the first training examples on which the paper protocol's certificates
    and Hessians are taken; ``rule``: the certificate's thresholds. ``protocols``: those a run
    takes after the paper's (names of :data:`~.protocols.PROTOCOLS`): ``regularised`` with
    ``weight_decay`` (a number per task, or ``"choose"``: chosen on ``weight_decay_grid``,
    :mod:`.regularisation`) and at most ``finish_rounds`` L-BFGS rounds; ``converged`` with
    ``converged_lr`` and ``converged_max_epochs`` (:class:`~.protocols.Converged`);
    ``matched-loss``: a second run per paper run, stopped at its cell's training CE
    (:mod:`.matched`);
    ``protocol_sizes``: per task, the sizes whose runs take those protocols (a task not named:
    every size; the others stop at the paper protocol's end points); ``controls``: the control
    arms run beside the paper's at each task's small size (:data:`~.arms.ARMS`: ``linear``,
    ``static``)."""

    sizes: dict
    batch_sizes: dict
    learning_rates: dict
    max_epochs: dict
    schedule_scale: dict
    train_examples: dict
    seeds: tuple
    hessian_subset: int
    protocols: tuple = ("regularised",)
    weight_decay: dict = field(default_factory=dict)
    weight_decay_grid: tuple = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    finish_rounds: int = 200
    converged_lr: dict = field(default_factory=dict)
    converged_max_epochs: dict = field(default_factory=dict)
    large_seeds: tuple | dict | None = None
    protocol_sizes: dict = field(default_factory=dict)
    controls: tuple = ("linear", "static")
    rule: Rule = Rule()

    def __post_init__(self):
        unknown = [p for p in self.protocols if p not in PROTOCOLS and p != MATCHED]
        if unknown:
            raise ValueError(f"unknown protocols {unknown}; choose among {', '.join(PROTOCOLS)}, {MATCHED}")
        unknown = [c for c in self.controls if c not in ARMS]
        if unknown:
            raise ValueError(f"unknown control arms {unknown}; choose among linear, static")
        for key in ("seeds", "protocols", "weight_decay_grid", "controls") + \
                (("large_seeds",) if isinstance(self.large_seeds, (list, tuple)) else ()):
            object.__setattr__(self, key, tuple(getattr(self, key)))

    @classmethod
    def from_parameters(cls, parameters: dict) -> "Settings":
        """The settings among a notebook's ``parameters`` (other names are ignored)."""
        import dataclasses

        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in parameters.items() if k in names})

    def train_count(self, name: str, task: TrainTest) -> int:
        """How many training examples task ``name`` uses (the trim, at most the split's size)."""
        return min(self.train_examples[name] or len(task.y_train), len(task.y_train))

    def rate(self, name: str, batch: int) -> float:
        """The ``converged`` protocol's learning rate for task ``name`` at ``batch``."""
        return per_batch(self.converged_lr[name], batch)

    def cap(self, name: str, batch: int) -> int:
        """The ``converged`` protocol's cap on epochs for task ``name`` at ``batch``."""
        return per_batch(self.converged_max_epochs[name], batch)

    def takes_protocols(self, name: str, hidden: int) -> bool:
        """Whether runs of task ``name`` at size ``hidden`` take the protocols after the paper's."""
        return name not in self.protocol_sizes or hidden in self.protocol_sizes[name]

    def seeds_of(self, name: str, small: bool) -> tuple:
        """The seeds of task ``name``'s small or large size."""
        large = self.large_seeds.get(name) if isinstance(self.large_seeds, dict) else self.large_seeds
        return tuple(self.seeds if small or large is None else large)

    def protocols_of(self, name: str, batch: int, weight_decays: dict) -> tuple:
        """The protocol objects of a run of task ``name`` at ``batch``."""
        chosen = []
        for protocol in self.protocols:
            if protocol == "converged":
                chosen.append(Converged(self.rate(name, batch), self.cap(name, batch)))
            elif protocol == "regularised":
                if name not in weight_decays:
                    raise ValueError(f"no lambda for {name}: choose it first (table1.regularisation.choose)")
                chosen.append(Regularised(weight_decays[name], rounds=self.finish_rounds))
        return tuple(chosen)


# the arms of each size: the paper's (the grown network and the fully connected twins)
SMALL_ARMS = ("growing", "a")
LARGE_ARMS = ("growing", "a", "b", "c")


def plan(tasks: dict[str, TaskRef], settings: Settings, weight_decays: dict | None = None) -> list[Table1Run]:
    """Every run of Table 1: the small size with the grown network, architecture ``a`` and the
    control arms, the large one with the grown network and ``a``, ``b``, ``c``, both batch sizes,
    every seed, each run taking the
    settings' protocols (``weight_decays``: the regularised protocol's lambda per task, from
    :func:`~.regularisation.choose`). The first seed's grown and ``a`` runs at the large size
    and the small batch also compute their spectral density (the page's figure). Refuses a
    growth schedule that ends after training stops, before anything runs."""
    specs = []
    for name, ref in tasks.items():
        task = ref.load()
        max_epochs, scale = settings.max_epochs[name], settings.schedule_scale[name]
        for k, hidden in enumerate(settings.sizes[name]):
            small = k == 0
            seeds = settings.seeds_of(name, small)
            for model in (SMALL_ARMS + settings.controls if small else LARGE_ARMS):
                if model == "growing":
                    last = paper_schedule(task.name, hidden, small).scaled(scale).last_epoch
                    if last >= max_epochs:
                        raise ValueError(f"{name}: the growth schedule ends at epoch {last} but training stops after "
                                         f"{max_epochs}; raise max_epochs or lower schedule_scale")
                for batch in settings.batch_sizes[name]:
                    for seed in seeds:
                        specs.append(Table1Run(
                            ref, hidden, model, batch, seed, lr=settings.learning_rates[name], max_epochs=max_epochs,
                            schedule_scale=scale, hessian_subset=settings.hessian_subset, small=small,
                            train_limit=settings.train_examples[name],
                            protocols=settings.protocols_of(name, batch, weight_decays or {})
                            if settings.takes_protocols(name, hidden) else (), rule=settings.rule,
                            density=(not small and model in ("growing", "a") and batch == settings.batch_sizes[name][0]
                                     and seed == seeds[0])))
    return specs


def plan_matched_loss(specs: list[Table1Run], records: list, settings: Settings) -> list[MatchedLossRun]:
    """The ``matched-loss`` runs (:mod:`.matched`) of the successful paper runs ``specs`` (their
    ``records``) whose sizes take the protocols, each at its cell's target
    (:func:`~.matched.targets`), when the settings ask for that protocol."""
    if MATCHED not in settings.protocols:
        return []
    kept = [(spec, record) for spec, record in zip(specs, records)
            if isinstance(record, Table1Record) and settings.takes_protocols(record.rows[0].task, spec.hidden)]
    chosen = targets(*zip(*kept)) if kept else {}
    return [MatchedLossRun(spec, chosen[cell(record.rows[0])]) for spec, record in kept]
