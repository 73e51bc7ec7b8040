"""The cheap fills a generator predicts its residual over (coarse-to-fine, like DeepFill: the
network starts from a plausible fill of the hole and spends its capacity on structure).

    "pyramid"     smooth push-pull fill from all the known pixels
    "directional" nearest known pixel left/right/up/down, weighted by 1/distance^2
    "edge"        directional at the hole's edge, where it continues the known pixels exactly,
                  fading into the pyramid fill inside (model=unet_full)
    "fast_edge"   the same idea at about a quarter of the cost: the directional part at half
                  resolution by one packed max-pool per axis, plus an exact first ring of hole
                  pixels at full resolution
    "harmonic"    the membrane interpolation of the hole (Laplace's equation, solved by
                  multigrid Jacobi sweeps)
    "biharmonic"  the thin-plate interpolation (multigrid conjugate gradients): continues
                  gradients too; the strongest of these on real photos
    "fast_biharmonic"  the thin plate (with a little tension) at the harmonic fill's cost:
                  multigrid Chebyshev steps up to half resolution: the default

All of them are plain pooling, stencil and elementwise tensor code, so they export to ONNX and
TorchScript with dynamic H and W, and they return the image itself at the known pixels.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch.nn import functional as F


def pyramid_fill(image: torch.Tensor, mask: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """Smooth fill of the hole from the known pixels (push-pull / normalised convolution).

    Pull: the known colours (zero in the hole) and the hole's fraction, averaged down a pyramid
    together. Push: from the coarsest level up, each level keeps its known colour sum and takes
    the missing fraction from the level below (filled = colour + hole fraction x coarse, which
    is the normalised colour where a level knows everything). The coarsest level starts from
    the mean known colour. Pure pooling and interpolation.
    """
    known = 1.0 - mask
    pyramid = [torch.cat([image * known, mask], dim=1)]
    for _ in range(levels):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2, ceil_mode=True))
    known_sum = known.sum((2, 3), keepdim=True).clamp_min(1e-6)
    filled = pyramid[0][:, :3].sum((2, 3), keepdim=True) / known_sum
    for level in reversed(pyramid):
        coarse = F.interpolate(filled, size=level.shape[-2:], mode="bilinear", align_corners=False)
        filled = level[:, :3] + level[:, 3:] * coarse
    return filled


FAR = 1e4  # distance meaning "no known pixel in this direction" (more than any real one)
SCAN_STEPS = 8  # the directional fill looks up to 2**8 - 1 = 255 px away in each direction


def nearest_known(
    colour: torch.Tensor, known: torch.Tensor, dim: int, reverse: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(colour of the nearest known pixel along `dim` (-1: rows, -2: columns) at or before each
    pixel, or at or after it with `reverse`; distance to it, FAR where there is none in reach).

    A log-step max-scan: every known pixel scores its position key (larger = nearer: index + 1
    looking back, length - index looking ahead), unknown pixels 0; after step i every pixel holds
    the best score within 2**(i+1) - 1 pixels. Pad, slice and max on one channel, then one gather:
    cheap (no transposes or flips), and exportable to ONNX/TorchScript with dynamic H and W.
    """
    length = known.shape[dim]
    shape = [1, 1, 1, 1]
    shape[dim] = length
    position = torch.arange(length, device=known.device).view(shape).to(known.dtype)
    score = known * (length - position if reverse else position + 1.0)
    for step in range(SCAN_STEPS):
        shift = 2**step
        pad = [0, 0, 0, 0]  # F.pad order: left, right, top, bottom
        pad[(0 if dim == -1 else 2) + int(reverse)] = shift
        shifted = F.pad(score, pad).narrow(dim, shift if reverse else 0, length)
        score = torch.maximum(score, shifted)
    source = length - score if reverse else score - 1.0
    distance = torch.where(score > 0, (source - position).abs(), torch.full_like(score, FAR))
    index = source.clamp(0, length - 1).long()
    return torch.gather(colour, dim, index.expand_as(colour)), distance


def directional_fill(
    image: torch.Tensor, mask: torch.Tensor, edge_width: float | None = None, levels: int = 5
) -> torch.Tensor:
    """Fill each hole pixel from the nearest known pixels to its left, right, top and bottom,
    weighted by inverse squared distance; `pyramid_fill` where none of the four is within
    reach (e.g. the corners of an all-sides outpainting band). With `edge_width`, only the
    hole's edge gets it: the weight of the directional fill over the pyramid fill falls as
    exp(-(d - 1) / edge_width) with the distance d to the nearest known pixel.

    Why: it continues the known pixels exactly at the hole's edge (a border band becomes row
    replication), where the push-pull fill is a blur of everything nearby. On the built-in test
    set it alone beats Telea and Navier-Stokes on boxes and strokes; the network then only has
    to learn a correction.
    """
    known = 1.0 - mask
    total = torch.zeros_like(image)
    weight_sum = torch.zeros_like(mask)
    nearest_distance = torch.full_like(mask, FAR)
    for dim in (-1, -2):  # along rows, then along columns
        for reverse in (False, True):  # looking back (left, up), then ahead (right, down)
            nearest, distance = nearest_known(image, known, dim, reverse)
            weight = (distance < FAR).to(image.dtype) / distance.clamp_min(1.0) ** 2
            total = total + nearest * weight
            weight_sum = weight_sum + weight
            nearest_distance = torch.minimum(nearest_distance, distance)
    fallback = pyramid_fill(image, mask, levels)
    directional = torch.where(weight_sum > 0, total / weight_sum.clamp_min(1e-12), fallback)
    if edge_width is None:
        return directional
    edge = torch.exp(-(nearest_distance - 1.0).clamp(0.0, 100.0 * edge_width) / edge_width)
    return fallback + edge * (directional - fallback)


PACKED_REACH = 15  # the fast edge fill looks this far (half-resolution px) along rows/columns


def packed_nearest(
    grey_levels: torch.Tensor, known: torch.Tensor, dim: int, reach: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For the nearest known pixel within `reach` before and after each pixel along `dim`:
    [(its colour in grey levels, its weight 1/distance^2 or 0 where none), back, ahead].

    One max-pool per axis instead of a log-step scan and a gather per direction: every known
    pixel packs a position key (larger = nearer: index + 1 looking back, length - index looking
    ahead) and its 8-bit colour into one float, key * 256 + grey level (exact below 2**24, so
    up to 65535 px a side), and the maximum over a window is the nearest known pixel with its
    colour attached. Both directions share the pool: pad both ends, slice each out.
    """
    length = known.shape[dim]
    shape = [1, 1, 1, 1]
    shape[dim] = length
    back_key = torch.arange(1, length + 1, device=known.device).view(shape).to(known.dtype)
    ahead_key = (length + 1.0) - back_key
    packed = torch.cat(
        [known * (back_key * 256.0 + grey_levels), known * (ahead_key * 256.0 + grey_levels)], 1
    )
    if dim == -1:
        pooled = F.max_pool2d(F.pad(packed, (reach, reach)), (1, reach + 1), stride=1)
    else:
        pooled = F.max_pool2d(F.pad(packed, (0, 0, reach, reach)), (reach + 1, 1), stride=1)
    back = pooled.narrow(dim, 0, length)[:, :3]
    ahead = pooled.narrow(dim, reach, length)[:, 3:]
    nearest = []
    for value, key in ((back, back_key), (ahead, ahead_key)):
        found_key = torch.floor(value[:, :1] * (1.0 / 256.0))  # 0: nothing known in reach
        distance = (key - found_key).clamp_min(1.0)
        nearest.append((value - found_key * 256.0, found_key.clamp(0.0, 1.0) / distance.square()))
    return nearest


def packed_edge_fill(
    image: torch.Tensor, mask: torch.Tensor, edge_width: float, levels: int, reach: int
) -> torch.Tensor:
    """The "edge" fill with the directional part from `packed_nearest` (colours rounded to 8
    bits, reach limited to `reach` px, beyond which the edge weight is negligible anyway)."""
    known = 1.0 - mask
    grey_levels = torch.round(image.clamp(0.0, 1.0) * 255.0)
    totals = []  # [colour * weight (3), weight (1)] per direction
    for dim in (-1, -2):
        totals += [
            torch.cat([c * w, w], 1) for c, w in packed_nearest(grey_levels, known, dim, reach)
        ]
    total = totals[0] + totals[1] + totals[2] + totals[3]
    best_weight = torch.maximum(
        torch.maximum(totals[0][:, 3:], totals[1][:, 3:]),
        torch.maximum(totals[2][:, 3:], totals[3][:, 3:]),
    )
    directional = total[:, :3] / (255.0 * total[:, 3:].clamp_min(1e-12))
    nearest_distance = best_weight.clamp_min(1e-8).rsqrt()  # FAR-like where nothing in reach
    edge = torch.exp((1.0 - nearest_distance).clamp(-100.0 * edge_width, 0.0) / edge_width)
    fallback = pyramid_fill(image, mask, levels)
    return fallback + edge * (directional - fallback)


CROSS = ((0.0, 1.0, 0.0), (1.0, 0.0, 1.0), (0.0, 1.0, 0.0))


def fast_edge_fill(
    image: torch.Tensor,
    mask: torch.Tensor,
    edge_width: float = 4.0,
    levels: int = 5,
    reach: int = PACKED_REACH,
) -> torch.Tensor:
    """The edge fill at about a quarter of the cost, for the default (half-resolution) model.

    The packed edge fill runs on the 2x2 means of the known pixels (a half-resolution pixel is
    known when any of its four is; `edge_width` and `reach` count half-resolution pixels there,
    so `reach` 15 looks 30 px away) and is upsampled bilinearly; hole pixels next to a known
    pixel (the first ring) then take the mean of their known 4-neighbours at full resolution,
    which keeps the seam exact: along a straight edge it is row or column replication.

    Why: in onnxruntime the full-resolution "edge" fill was ~4.5 of the default model's 12.4 ms
    at 256x256 (dozens of passes over full-size tensors). As a fill alone (no network) on the
    built-in test set it is level with or better than "edge" on every mask family (thin
    strokes -0.1 dB, box +0.2, outpaint +0.25, thick strokes +0.6).
    """
    known = 1.0 - mask
    stacked = torch.cat([image * known, known], dim=1)
    half = F.avg_pool2d(stacked, 2, ceil_mode=True)
    half_known = half[:, 3:]
    half_image = half[:, :3] / half_known.clamp_min(1e-6)
    half_mask = (half_known <= 0).to(image.dtype)
    coarse = packed_edge_fill(half_image, half_mask, edge_width / 2.0, max(levels - 1, 1), reach)
    filled = F.interpolate(coarse, size=image.shape[-2:], mode="bilinear", align_corners=False)
    cross = torch.tensor(CROSS, dtype=image.dtype, device=image.device).view(1, 1, 3, 3)
    with torch.autocast(image.device.type, enabled=False):  # bf16 training: keep the ring exact
        ring = F.conv2d(stacked.float(), cross.float().expand(4, 1, 3, 3), padding=1, groups=4)
    neighbours = ring[:, 3:]  # known 4-neighbours of each pixel
    ring_colour = ring[:, :3] / neighbours.clamp_min(1.0)
    filled = filled + neighbours.clamp(0.0, 1.0) * (ring_colour - filled)
    return stacked[:, :3] + filled * mask  # the known pixels as they are


HARMONIC_SWEEPS = (40, 40, 40, 40, 20, 8, 4)  # Jacobi sweeps per level, coarsest to finest


NEIGHBOUR_MEAN = torch.tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]]).view(
    1, 1, 3, 3
)
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def _traced_stencil(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """`kernel` on each channel, edge pixels repeating themselves: one depthwise convolution."""
    with warnings.catch_warnings():  # the channel count is a constant of the graph: fine
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        channels = int(u.shape[1])
    weight = kernel.to(u.device, u.dtype).expand(channels, 1, 3, 3)
    return F.conv2d(F.pad(u, [1, 1, 1, 1], mode="replicate"), weight, groups=channels)


def _neighbour_sum(u: torch.Tensor) -> torch.Tensor:
    """Sum of each pixel's 4 neighbours, edge pixels repeating themselves (eager torch)."""
    p = F.pad(u, [1, 1, 1, 1], mode="replicate")
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]


def _neighbour_mean(u: torch.Tensor) -> torch.Tensor:
    """Mean of each pixel's 4 neighbours (edge pixels repeat themselves: no flux out).

    The same stencil two ways, because the harmonic and thin-plate fills run hundreds of them:
    shifted slices in eager torch (training), twice as fast there as a depthwise convolution;
    one convolution in traced graphs (ONNX, TorchScript), where each slice of a dynamic-size
    tensor is several nodes (the default model's ONNX graph: 11,783 -> 4,487 nodes, predict at
    256 px -15%, docs/results.md). The two agree to float rounding (export parity).
    """
    if torch.jit.is_tracing():
        return _traced_stencil(u, NEIGHBOUR_MEAN)
    return 0.25 * _neighbour_sum(u)


def _known_pyramid(
    image: torch.Tensor, mask: torch.Tensor, levels: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(known colours with 0 in the hole, hole) at `levels` + 1 resolutions, coarsest first. A
    coarse pixel counts as known when any of its pixels is, with their mean colour.

    Why any, not all: under brush strokes or scattered holes nearly every coarse pixel holds a
    hole pixel, so "known only when all of its pixels are" left the coarse levels almost empty
    and the inside of a dense mask took the mean colour of the whole image (flat grey strokes
    across dark and light regions). The coarse levels only give the finer ones their starting
    values; the finest level keeps the exact known pixels. Fill alone through predict at 512 px
    on 23 real photos: brush strokes +1.8 dB, boxes +0.6, border bands +0.4 (docs/results.md).
    """
    known = 1.0 - mask
    pyramid = [(image * known, known)]
    for _ in range(levels):
        colour_sum, weight = pyramid[-1]
        pyramid.append(
            (F.avg_pool2d(colour_sum, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True))
        )
    out = []
    for depth, (colour_sum, weight) in enumerate(reversed(pyramid)):
        hole = mask if depth == levels else (weight <= 0).to(image.dtype)
        out.append((colour_sum / weight.clamp_min(1e-6) * (1.0 - hole), hole))
    return out


def _coarse_to_fine(
    image: torch.Tensor,
    mask: torch.Tensor,
    levels: int,
    solve: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor],
) -> torch.Tensor:
    """Multigrid: push-pull at the coarsest level, then at each finer level the coarser solution
    upsampled into the hole and `solve(filled, hole, depth)` (depth 0: the coarsest level,
    `levels`: the finest)."""
    filled = None
    for depth, (colour, hole) in enumerate(_known_pyramid(image, mask, levels)):
        if filled is None:
            filled = pyramid_fill(colour, hole, levels=3)
        else:
            coarse = F.interpolate(
                filled, size=hole.shape[-2:], mode="bilinear", align_corners=False
            )
            filled = colour + coarse * hole
        filled = solve(filled, hole, depth)
    return filled


def _per_level(counts: tuple[int, ...], depth: int) -> int:
    """The count of a level, coarsest first; the last one repeats for deeper pyramids."""
    return counts[min(depth, len(counts) - 1)]


def jacobi_sweeps(
    filled: torch.Tensor, hole: torch.Tensor, count: int, damping: float = 0.9
) -> torch.Tensor:
    """Damped Jacobi sweeps toward the membrane: each hole pixel moves toward the mean of its 4
    neighbours; known pixels stay fixed."""
    for _ in range(count):
        filled = filled + damping * hole * (_neighbour_mean(filled) - filled)
    return filled


def harmonic_fill(
    image: torch.Tensor,
    mask: torch.Tensor,
    levels: int = 6,
    sweeps: tuple[int, ...] = HARMONIC_SWEEPS,
    damping: float = 0.9,
) -> torch.Tensor:
    """The membrane (Laplace) interpolation of the hole from its boundary, by multigrid.

    Why: on real photos at 256-512 px this smooth fill is ahead of OpenCV's Telea and
    Navier-Stokes on boxes and border bands (docs/results.md). A full solve costs thousands of
    Jacobi sweeps at full resolution; coarse-to-fine needs few: at each level damped Jacobi
    sweeps (each hole pixel moves toward the mean of its 4 neighbours; known pixels stay fixed).
    `sweeps[i]` is the count at the i-th level from the coarsest. Pooling, padding, a 3x3
    stencil and elementwise ops only: exports to ONNX with dynamic H and W.
    """

    return _coarse_to_fine(
        image,
        mask,
        levels,
        lambda filled, hole, depth: jacobi_sweeps(filled, hole, _per_level(sweeps, depth), damping),
    )


BIHARMONIC_ITERATIONS = (60, 60, 60, 60, 60, 40, 20)  # conjugate-gradient steps, coarsest first
CG_CONVERGED = 1e-12  # squared residual (per image and channel) below which CG stops moving


def _laplacian(u: torch.Tensor) -> torch.Tensor:
    """The 5-point Laplacian with no flux out of the image (as _neighbour_mean: edge pixels
    repeat themselves), so the operator is symmetric. Traced: one convolution with the
    Laplacian's kernel (as in _neighbour_mean)."""
    if torch.jit.is_tracing():
        return _traced_stencil(u, LAPLACIAN)
    return _neighbour_sum(u) - 4.0 * u


def biharmonic_steps(filled: torch.Tensor, hole: torch.Tensor, count: int) -> torch.Tensor:
    """`count` conjugate-gradient steps toward the thin-plate fill of the hole: the hole pixels
    minimising the squared Laplacian over the image, the known pixels fixed. The normal
    equations hole * L(L(u)) = 0 are symmetric positive definite on the hole pixels, so CG
    applies; each step is two Laplacians and three sums per image and channel."""
    x = filled.float()
    hole = hole.float()
    residual = -hole * _laplacian(_laplacian(x))
    direction = residual
    rr = (residual * residual).sum((2, 3), keepdim=True)
    for _ in range(count):
        step = hole * _laplacian(_laplacian(direction))
        alpha = rr / (direction * step).sum((2, 3), keepdim=True).clamp_min(1e-20)
        alpha = alpha * (rr > CG_CONVERGED).to(x.dtype)  # solved: rounding noise only from here
        x = x + alpha * direction
        residual = residual - alpha * step
        rr_next = (residual * residual).sum((2, 3), keepdim=True)
        direction = residual + rr_next / rr.clamp_min(1e-20) * direction
        rr = rr_next
        # Solved everywhere (small levels take a few steps): the rest would not move x. Only
        # outside tracing, which must record every step for images of any size.
        if not torch.jit.is_tracing() and bool((rr <= CG_CONVERGED).all()):
            break
    return x.to(filled.dtype)


def biharmonic_fill(
    image: torch.Tensor,
    mask: torch.Tensor,
    levels: int = 6,
    iterations: tuple[int, ...] = BIHARMONIC_ITERATIONS,
) -> torch.Tensor:
    """The thin-plate (biharmonic) interpolation of the hole, as scikit-image's
    `inpaint_biharmonic` solves it exactly, approximated by multigrid conjugate gradients.

    Why: it continues gradients across the hole, where the membrane fill only continues
    values: on brush strokes in real photos at 512 px it is +1.2 dB over the harmonic fill and
    within 0.2 dB of scikit-image's exact solve (at about a third of its time), and on boxes
    and border bands +0.4-0.6 dB (docs/results.md). The fixed number of steps per level keeps
    the cost bounded: a large hole is then between the membrane and the thin plate, which on
    boxes is better than either. Exports to ONNX (the steps are unrolled) with dynamic H and W.
    """
    with torch.autocast(image.device.type, enabled=False):  # CG needs float32 sums
        return _coarse_to_fine(
            image.float(),
            mask.float(),
            levels,
            lambda filled, hole, depth: biharmonic_steps(
                filled, hole, _per_level(iterations, depth)
            ),
        )


# Chebyshev steps per level, coarsest first, up to half resolution; then FINEST_SWEEPS membrane
# sweeps at full resolution. Measured as a fill alone on real photos (docs/results.md): the
# coarsest three counts barely matter (4, 8, 16 instead of 2, 4, 8: +-0.01 dB), 30 instead of
# 24 on the next two is +0.03 dB, 16 instead of 8 at half resolution +0.1 dB on brush strokes
# at 512 px for +15% of predict's time; the finest sweeps are +0.1-0.4 dB at 64 px.
FAST_BIHARMONIC_STEPS = (2, 4, 8, 24, 24, 8)
FINEST_SWEEPS = 4
# The share of the membrane energy in the spline: the hole minimises
# TENSION |grad u|^2 + (1 - TENSION) |laplacian u|^2 (per level, in its pixels). A little
# tension keeps the thin plate from overshooting the gradients of noisy, textured edges:
# 0.3 is up to +0.2 dB over the pure thin plate (0) at 64 px on real photos (+0.17 on the
# demo's val photo), level at 512 px.
TENSION = 0.3
# The bounds of the spectrum Chebyshev's steps are tuned to. The operator's eigenvalues are
# l * (l + TENSION / (1 - TENSION)) for the Laplacian's l in [0, 8]; the smallest that matter
# after the coarser levels solved the smooth part are about 0.1 for the pure thin plate
# (measured there: 0.02 and 0.5 both lose 0.1-0.5 dB), scaled alike.
_SHIFT = TENSION / (1.0 - TENSION)
CHEBYSHEV_BOUNDS = (0.1 / (1.0 - TENSION), 64.0 + 8.0 * _SHIFT)
# L - shift x identity as one traced convolution (export keeps it float with the others)
SHIFTED_LAPLACIAN = LAPLACIAN - _SHIFT * torch.tensor(
    [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
).view(1, 1, 3, 3)
STENCILS = (NEIGHBOUR_MEAN, LAPLACIAN, SHIFTED_LAPLACIAN)  # the fills' convolutions: export
# keeps them float


def _spline_operator(u: torch.Tensor) -> torch.Tensor:
    """L(L(u) - shift u): the tension spline's equations (the thin plate's at TENSION 0),
    symmetric because L is; traced, two convolutions."""
    if torch.jit.is_tracing():
        inner = _traced_stencil(u, SHIFTED_LAPLACIAN)
    else:
        inner = _neighbour_sum(u) - (4.0 + _SHIFT) * u
    return _laplacian(inner)


def chebyshev_steps(
    filled: torch.Tensor,
    hole: torch.Tensor,
    count: int,
    bounds: tuple[float, float] = CHEBYSHEV_BOUNDS,
) -> torch.Tensor:
    """`count` Chebyshev semi-iteration steps toward the tension-spline fill of the hole:
    hole * L(L(u) - shift u) = 0 with the known pixels fixed (biharmonic_steps' equations plus
    a membrane share).

    Why Chebyshev rather than conjugate gradients: its step sizes are fixed numbers given the
    spectrum's bounds, so a step is two stencils and a few elementwise ops, with no sums over
    the image (each a reduction and a division in the graph, whose different float order
    across runtimes CG amplifies). Where the bounds fit, it converges nearly as fast.
    """
    low, high = bounds
    theta, delta = (high + low) / 2.0, (high - low) / 2.0
    sigma = theta / delta
    rho = 1.0 / sigma
    x = filled
    residual = -hole * _spline_operator(x)
    step = residual / theta
    for _ in range(count):  # fused ops: at the training size each kernel launch counts
        x = x + step
        residual = torch.addcmul(residual, hole, _spline_operator(step), value=-1.0)
        rho_next = 1.0 / (2.0 * sigma - rho)
        step = torch.add(step * (rho_next * rho), residual, alpha=2.0 * rho_next / delta)
        rho = rho_next
    return x


def fast_biharmonic_fill(
    image: torch.Tensor,
    mask: torch.Tensor,
    levels: int = 6,
    steps: tuple[int, ...] = FAST_BIHARMONIC_STEPS,
    finest_sweeps: int = FINEST_SWEEPS,
) -> torch.Tensor:
    """A thin-plate fill (with TENSION) at the harmonic fill's cost, for the default model:
    Chebyshev steps (`chebyshev_steps`) on every level up to half resolution; the full
    resolution takes that solution upsampled (bilinear) and a few membrane sweeps.

    Why: the thin plate continues gradients into the hole; through predict at 512 px on 23
    real photos, as a fill alone, it is +0.3 / +0.5 / +0.4 dB over the harmonic fill on boxes
    / brush strokes / border bands, close to the CG biharmonic fill, and ahead of every
    classical method on boxes and border bands (docs/results.md). Thin-plate steps at full
    resolution, and CG's reductions, made biharmonic_fill cost predict 6.8x Telea's time at
    256 px; this one costs about what the harmonic fill does (benchmarks/inference.py).
    """

    def solve(filled: torch.Tensor, hole: torch.Tensor, depth: int) -> torch.Tensor:
        if depth == levels:  # full resolution: the upsampled half-resolution solution, smoothed
            return jacobi_sweeps(filled, hole, finest_sweeps)
        return chebyshev_steps(filled, hole, _per_level(steps, depth))

    with torch.autocast(image.device.type, enabled=False):  # keep the steps float32
        return _coarse_to_fine(image.float(), mask.float(), levels, solve)


FILLS = ("pyramid", "directional", "edge", "fast_edge", "harmonic", "biharmonic", "fast_biharmonic")


def make_fill(
    image: torch.Tensor, mask: torch.Tensor, fill: str, edge_width: float, levels: int
) -> torch.Tensor:
    """The cheap fill a generator predicts its residual over (one of FILLS)."""
    if fill == "harmonic":
        return harmonic_fill(image, mask)
    if fill == "biharmonic":
        return biharmonic_fill(image, mask)
    if fill == "fast_biharmonic":
        return fast_biharmonic_fill(image, mask)
    if fill == "fast_edge":
        return fast_edge_fill(image, mask, edge_width, levels)
    if fill == "directional":
        return directional_fill(image, mask, levels=levels)
    if fill == "edge":
        return directional_fill(image, mask, edge_width, levels)
    return pyramid_fill(image, mask, levels)
