"""The geometry of a path as a polyline of pivots ``(P, D)``: tangents at the interior pivots,
re-spacing at equal arc length, the dense points between pivots and inserted pivots. No energy
is read except where a tangent needs the pivots' energies."""
from __future__ import annotations

import torch


def improved_tangents(points: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
    """Unit tangents ``(P-2, D)`` at the interior pivots (Henkelman & Jonsson 2000, eqs. 8-11).

    Uphill neighbour's segment where the energy is monotone; at an extremum the two
    segments weighted by the larger and smaller energy differences toward the higher
    neighbour; the plain sum of segments when both neighbours have equal energy.
    """
    forward = points[2:] - points[1:-1]
    backward = points[1:-1] - points[:-2]
    e_prev, e, e_next = energies[:-2], energies[1:-1], energies[2:]
    d_next, d_prev = (e_next - e).abs(), (e_prev - e).abs()
    d_max, d_min = torch.maximum(d_next, d_prev)[:, None], torch.minimum(d_next, d_prev)[:, None]
    extremum = torch.where((e_next > e_prev)[:, None], forward * d_max + backward * d_min,
                           forward * d_min + backward * d_max)
    tangent = torch.where(((e_next > e) & (e > e_prev))[:, None], forward,
                          torch.where(((e_next < e) & (e < e_prev))[:, None], backward, extremum))
    tangent = torch.where((e_next == e_prev)[:, None], forward + backward, tangent)
    return tangent / tangent.norm(dim=1, keepdim=True).clamp_min(1e-30)


def respace(points: torch.Tensor) -> torch.Tensor:
    """The same polyline with its pivots placed at equal arc-length spacing (ends fixed)."""
    segments = (points[1:] - points[:-1]).norm(dim=1)
    cumulative = torch.cat([segments.new_zeros(1), segments.cumsum(0)])
    if cumulative[-1] <= 0:
        return points.clone()
    targets = torch.linspace(0, float(cumulative[-1]), len(points), dtype=cumulative.dtype, device=points.device)
    index = torch.searchsorted(cumulative, targets, right=True).clamp(1, len(points) - 1) - 1
    fraction = ((targets - cumulative[index]) / segments[index].clamp_min(1e-30)).clamp(0, 1)[:, None]
    out = points[index] + fraction * (points[index + 1] - points[index])
    out[0], out[-1] = points[0], points[-1]
    return out


def respace_around(points: torch.Tensor, fixed: int) -> torch.Tensor:
    """:func:`respace` on each side of pivot ``fixed``, which stays where it is (a climbing image)."""
    return torch.cat([respace(points[: fixed + 1])[:-1], respace(points[fixed:])])


def interpolate(pivots: torch.Tensor, n_sub: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dense points: every pivot and ``n_sub`` equally spaced points inside each segment.

    Returns ``(points (M, D), position in [0, 1] by arc length (M,), is_pivot (M,) bool)``.
    """
    fractions = torch.linspace(0, 1, n_sub + 2, dtype=pivots.dtype, device=pivots.device)[:-1]
    a, b = pivots[:-1], pivots[1:]
    dense = (a[:, None] + fractions[None, :, None] * (b - a)[:, None]).reshape(-1, pivots.shape[1])
    dense = torch.cat([dense, pivots[-1:]])
    segments = (b - a).norm(dim=1)
    cumulative = torch.cat([segments.new_zeros(1), segments.cumsum(0)])
    position = (cumulative[:-1, None] + fractions[None, :] * segments[:, None]).reshape(-1)
    position = torch.cat([position, cumulative[-1:]]) / cumulative[-1].clamp_min(1e-30)
    is_pivot = torch.zeros(len(dense), dtype=torch.bool)
    is_pivot[:: n_sub + 1] = True
    return dense, position.cpu().to(torch.float64), is_pivot


def insert_pivots(pivots: torch.Tensor, where: list[tuple[int, float]]) -> torch.Tensor:
    """New pivots at ``fraction`` of segment ``k`` for each ``(k, fraction)``."""
    rows = list(pivots)
    for k, fraction in sorted(where, reverse=True):
        rows.insert(k + 1, pivots[k] + fraction * (pivots[k + 1] - pivots[k]))
    return torch.stack(rows)
