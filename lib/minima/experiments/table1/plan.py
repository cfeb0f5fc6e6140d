"""Table 1's plan: :class:`Settings` (notebook 40's parameters) and :func:`plan`, every run
of the table."""
from __future__ import annotations

from dataclasses import dataclass

from ...data import TrainTest
from ...geometry.certificate import Rule
from .arms import paper_schedule
from .protocols import Converged, per_batch
from .run import Table1Run
from .tasks import TaskRef


@dataclass(frozen=True)
class Settings:
    """Table 1 as notebook 40's parameters set it. Every field but the last three is a dict keyed
    by task name (``"MNIST"``, ``"AG News"``); ``converged_lr`` and ``converged_max_epochs``
    values may be dicts by batch size (:func:`per_batch`).

    ``sizes``: hidden units of the small and the large network; ``batch_sizes``: the paper's two;
    ``learning_rates``, ``max_epochs``: the paper's protocol (SGD; stop at 100 % training
    accuracy or after ``max_epochs``); ``schedule_scale``: factor on the growth epochs;
    ``train_examples``: the first N training examples (0: all, the trim); ``converged_lr``,
    ``converged_max_epochs``: the ``converged`` protocol (:class:`~.protocols.Converged`); ``seeds``: one run per
    seed and cell; ``hessian_subset``: the first training examples on which certificates and
    Hessians are taken; ``rule``: the certificate's thresholds."""

    sizes: dict
    batch_sizes: dict
    learning_rates: dict
    max_epochs: dict
    schedule_scale: dict
    train_examples: dict
    converged_lr: dict
    converged_max_epochs: dict
    seeds: tuple
    hessian_subset: int
    rule: Rule = Rule()

    @classmethod
    def from_parameters(cls, parameters: dict) -> "Settings":
        """The settings among a notebook's ``parameters`` (other names are ignored)."""
        import dataclasses

        names = {f.name for f in dataclasses.fields(cls)}
        chosen = {k: v for k, v in parameters.items() if k in names}
        return cls(**{**chosen, "seeds": tuple(chosen["seeds"])})

    def train_count(self, name: str, task: TrainTest) -> int:
        """How many training examples task ``name`` uses (the trim, at most the split's size)."""
        return min(self.train_examples[name] or len(task.y_train), len(task.y_train))

    def rate(self, name: str, batch: int) -> float:
        """The ``converged`` protocol's learning rate for task ``name`` at ``batch``."""
        return per_batch(self.converged_lr[name], batch)

    def cap(self, name: str, batch: int) -> int:
        """The ``converged`` protocol's cap on epochs for task ``name`` at ``batch``."""
        return per_batch(self.converged_max_epochs[name], batch)


def plan(tasks: dict[str, TaskRef], settings: Settings) -> list[Table1Run]:
    """Every run of Table 1: the small size with the grown network and architecture ``a``, the
    large one with ``a``, ``b``, ``c``, both batch sizes, every seed. The first seed's grown and
    ``a`` runs at the large size and the small batch also compute their spectral density (the
    page's figure). Refuses a growth schedule that ends after training stops, before anything
    runs."""
    specs, seeds = [], tuple(settings.seeds)
    for name, ref in tasks.items():
        task = ref.load()
        max_epochs, scale = settings.max_epochs[name], settings.schedule_scale[name]
        for k, hidden in enumerate(settings.sizes[name]):
            small = k == 0
            for model in (["growing", "a"] if small else ["growing", "a", "b", "c"]):
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
                            protocols=(Converged(settings.rate(name, batch), settings.cap(name, batch)),), rule=settings.rule,
                            density=(not small and model in ("growing", "a") and batch == settings.batch_sizes[name][0]
                                     and seed == seeds[0])))
    return specs
