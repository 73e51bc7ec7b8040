"""The coarse fills the generator corrects: the directional fill against a brute-force
reference, its edge behaviour, and export parity of a generator built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.generators import assert_export_parity, off_identity

from inpaintlab.data.masks import family
from inpaintlab.export import export_onnx
from inpaintlab.models.fills import (
    HARMONIC_SWEEPS,
    SCAN_STEPS,
    _laplacian,
    _neighbour_mean,
    biharmonic_fill,
    directional_fill,
    fast_biharmonic_fill,
    fast_edge_fill,
    harmonic_fill,
    packed_nearest,
    pyramid_fill,
)
from inpaintlab.models.unet import UNet
from inpaintlab.models.unet_full import UNetFull

REACH = 2**SCAN_STEPS - 1


def brute_force_fill(image: np.ndarray, mask: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Walk left, right, up and down from every hole pixel to the first known pixel."""
    out = image.copy()
    _, height, width = image.shape
    for y, x in zip(*np.nonzero(mask), strict=True):
        total, weight_sum = np.zeros(3), 0.0
        for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            for d in range(1, REACH + 1):
                yy, xx = y + d * dy, x + d * dx
                if not (0 <= yy < height and 0 <= xx < width):
                    break
                if not mask[yy, xx]:
                    total += image[:, yy, xx] / d**2
                    weight_sum += 1 / d**2
                    break
        out[:, y, x] = total / weight_sum if weight_sum else fallback[:, y, x]
    return out


@pytest.mark.parametrize("size", [(16, 16), (12, 20), (20, 9)])
def test_directional_fill_matches_brute_force(size):
    g = torch.Generator().manual_seed(sum(size))
    image = torch.rand(2, 3, *size, generator=g)
    mask = (torch.rand(2, 1, *size, generator=g) > 0.5).float()
    mask[1, :, :, size[1] // 2 :] = 1  # an outpainting band too
    filled = directional_fill(image, mask)
    fallback = pyramid_fill(image, mask)
    for i in range(2):
        expected = brute_force_fill(image[i].numpy(), mask[i, 0].numpy() > 0, fallback[i].numpy())
        np.testing.assert_allclose(filled[i].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_border_band_becomes_row_replication():
    image = torch.rand(1, 3, 8, 16)
    mask = torch.zeros(1, 1, 8, 16)
    mask[..., 12:] = 1  # right band, full height: only the left neighbour exists
    filled = directional_fill(image, mask)
    assert torch.equal(filled[..., :12], image[..., :12])  # known pixels as they are
    assert torch.allclose(filled[..., 12:], image[..., 11:12].expand(-1, -1, -1, 4))


def test_does_not_depend_on_hidden_pixels():
    image = torch.rand(1, 3, 10, 10)
    mask = torch.zeros(1, 1, 10, 10)
    mask[..., 3:7, 2:8] = 1
    other = image * (1 - mask) + torch.rand_like(image) * mask
    assert torch.equal(directional_fill(image, mask), directional_fill(other, mask))


def test_beyond_reach_and_fully_masked_fall_back_to_pyramid_fill():
    width = REACH + 20
    image = torch.rand(1, 3, 1, width)
    mask = torch.ones(1, 1, 1, width)
    mask[..., 0] = 0  # one known pixel; the far end of the row is out of reach
    filled = directional_fill(image, mask)
    fallback = pyramid_fill(image, mask)
    assert torch.allclose(filled[..., REACH], image[..., 0])
    assert torch.equal(filled[..., REACH + 1 :], fallback[..., REACH + 1 :])
    everything = torch.ones(1, 1, 8, 8)
    assert torch.isfinite(directional_fill(torch.rand(1, 3, 8, 8), everything)).all()


def test_edge_fill_is_directional_at_the_edge_and_pyramid_inside():
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 8:56, 8:56] = 1
    directional, pyramid = directional_fill(image, mask), pyramid_fill(image, mask)
    edge = directional_fill(image, mask, edge_width=2.0)
    assert torch.allclose(edge[..., 8, 8:56], directional[..., 8, 8:56])  # next to known pixels
    inside = edge[..., 24:40, 24:40]  # 16+ px from the nearest known pixel: exp(-15/2) ~ 5e-4
    assert torch.allclose(inside, pyramid[..., 24:40, 24:40], atol=1e-3)
    assert not torch.allclose(inside, directional[..., 24:40, 24:40], atol=1e-3)
    assert torch.equal(edge[mask.expand_as(edge) == 0], image[mask.expand_as(image) == 0])


@pytest.mark.parametrize(("dim", "reach"), [(-1, 3), (-2, 3), (-1, 40)])
def test_packed_nearest_matches_a_walk_to_the_nearest_known_pixel(dim, reach):
    """Colour and 1/d^2 weight of the nearest known pixel back and ahead, 0 beyond `reach`."""
    g = torch.Generator().manual_seed(reach - dim)
    grey = torch.randint(0, 256, (2, 3, 13, 17), generator=g).float()
    known = (torch.rand(2, 1, 13, 17, generator=g) > 0.7).float()
    (back, back_w), (ahead, ahead_w) = packed_nearest(grey, known, dim, reach)
    axis = 3 if dim == -1 else 2
    g_np, k_np = grey.numpy(), known.numpy()[:, 0] > 0
    for index in np.ndindex(2, 13, 17):
        for step, colour, weight in ((-1, back, back_w), (1, ahead, ahead_w)):
            n, y, x = index
            found = None
            for d in range(reach + 1):
                pos = [y, x]
                pos[axis - 2] += step * d
                if not 0 <= pos[axis - 2] < k_np.shape[axis - 1]:
                    break
                if k_np[n, pos[0], pos[1]]:
                    found = (d, g_np[n, :, pos[0], pos[1]])
                    break
            if found is None:
                assert weight[n, 0, y, x] == 0
            else:
                assert weight[n, 0, y, x] == pytest.approx(1 / max(found[0], 1) ** 2)
                np.testing.assert_array_equal(colour[n, :, y, x].numpy(), found[1])


def test_fast_edge_fill_keeps_known_pixels_and_replicates_across_a_straight_edge():
    image = torch.rand(1, 3, 16, 24)
    mask = torch.zeros(1, 1, 16, 24)
    mask[..., 13:] = 1  # right band, full height, at an odd column: half a 2x2 cell known
    filled = fast_edge_fill(image, mask)
    assert torch.equal(filled[..., :13], image[..., :13])
    assert torch.allclose(filled[..., 13], image[..., 12])  # the first ring: exact replication
    inside = filled[..., 14:]
    assert inside.min() >= 0 and inside.max() <= 1
    assert torch.isfinite(fast_edge_fill(image, torch.ones(1, 1, 16, 24))).all()


def test_fast_edge_fill_does_not_depend_on_hidden_pixels():
    image = torch.rand(2, 3, 20, 20)
    mask = torch.zeros(2, 1, 20, 20)
    mask[0, :, 3:14, 5:12] = 1
    mask[1, :, :, 7:] = 1
    other = image * (1 - mask) + torch.rand_like(image) * mask
    assert torch.equal(fast_edge_fill(image, mask), fast_edge_fill(other, mask))


def test_fast_edge_fill_is_close_to_the_edge_fill_on_smooth_images():
    """Same idea, cheaper: on a smooth image the two fills agree to a few grey levels."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    image = torch.stack([0.2 + 0.6 * x, 0.8 - 0.5 * y, 0.5 + 0.3 * x * y])[None]
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:45, 10:50] = 1
    exact, fast = directional_fill(image, mask, edge_width=4.0), fast_edge_fill(image, mask, 4.0)
    assert (exact - fast).abs().max() < 0.03


def box_and_band(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two images: one with a box far from the border, one with a right-half outpainting band."""
    mask = torch.zeros(2, 1, height, width)
    mask[0, :, 8:30, 4:20] = 1
    mask[1, :, :, width // 2 :] = 1
    return torch.rand(2, 3, height, width), mask


def test_directional_generator_export_parity_at_untraced_sizes(tmp_path):
    torch.manual_seed(0)
    generator = off_identity(UNetFull(base_channels=8, bottleneck_blocks=1, fill="directional"))
    assert_export_parity(generator, tmp_path, "unet_full", [(48, 64), (40, 24)], box_and_band)


def test_full_unet_that_sees_its_fill_does_not_peek_and_exports(tmp_path):
    """sees_fill: the encoder's input is [fill, mask], and the fill only reads known pixels."""
    torch.manual_seed(0)
    generator = off_identity(
        UNetFull(base_channels=8, bottleneck_blocks=1, fill="edge", sees_fill=True)
    )
    image, mask = box_and_band(48, 64)
    other = image * (1 - mask) + torch.rand_like(image) * mask
    with torch.no_grad():
        assert torch.allclose(generator(image, mask), generator(other, mask), atol=1e-6)
    assert_export_parity(generator, tmp_path, "unet_full", [(48, 64), (40, 24)], box_and_band)


def test_fast_edge_fill_is_the_same_under_bfloat16_autocast():
    """Training runs in bf16-mixed; the fill the network learns on must be the exported one."""
    image = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 5:20, 7:25] = 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = fast_edge_fill(image, mask)
    assert torch.equal(under_autocast, fast_edge_fill(image, mask))


def ramp_with_box(height: int = 64, width: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear colour ramp (harmonic, so the membrane fill should rebuild it) with a box hole."""
    ys = torch.linspace(0.1, 0.7, height).view(1, 1, height, 1)
    xs = torch.linspace(0.0, 0.3, width).view(1, 1, 1, width)
    zero = torch.zeros(1, 1, height, width)
    image = torch.cat([ys + xs + zero, 0.8 - ys + zero, 0.2 + xs + zero], dim=1)
    mask = torch.zeros(1, 1, height, width)
    mask[..., 12:52, 20:70] = 1
    return image.contiguous(), mask


def test_harmonic_fill_rebuilds_a_linear_ramp_and_keeps_known_pixels():
    image, mask = ramp_with_box()
    filled = harmonic_fill(image, mask)
    assert torch.equal(filled * (1 - mask), image * (1 - mask))
    error = (filled - image).abs()[mask.expand_as(image) > 0]
    pyramid_error = (pyramid_fill(image, mask) - image).abs()[mask.expand_as(image) > 0]
    assert error.max() < 0.03, error.max()
    assert error.mean() < 0.25 * pyramid_error.mean()


def test_harmonic_fill_does_not_depend_on_hidden_pixels():
    image, mask = ramp_with_box()
    other = image * (1 - mask) + torch.rand_like(image) * mask
    assert torch.allclose(harmonic_fill(image, mask), harmonic_fill(other, mask), atol=1e-6)


def no_flux_laplacian(height: int, width: int):
    """The 5-point Laplacian of an image as a sparse matrix, edge pixels repeating themselves
    (no flux out of the image), as the fills' stencils compute it."""
    from scipy.sparse import csr_matrix

    index = np.arange(height * width).reshape(height, width)
    rows, cols, values = [], [], []
    for y in range(height):
        for x in range(width):
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                ny, nx = min(max(y + dy, 0), height - 1), min(max(x + dx, 0), width - 1)
                rows += [index[y, x], index[y, x]]
                cols += [index[ny, nx], index[y, x]]
                values += [1.0, -1.0]
    return csr_matrix((values, (rows, cols)), shape=(height * width,) * 2)


def exact_fill(image: np.ndarray, hole: np.ndarray, operator) -> np.ndarray:
    """The hole pixels solving hole * operator(u) = 0, the known pixels fixed (a sparse solve)."""
    from scipy.sparse.linalg import spsolve

    operator = operator.tocsr()
    unknown, known = hole.ravel(), ~hole.ravel()
    out = image.reshape(image.shape[0], -1).copy()
    for channel in out:
        rhs = -operator[unknown][:, known] @ channel[known]
        channel[unknown] = spsolve(operator[unknown][:, unknown].tocsc(), rhs)
    return out.reshape(image.shape)


def exact_membrane(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Laplace's equation on the hole pixels (the harmonic fill's problem), solved exactly."""
    return exact_fill(image, hole, no_flux_laplacian(*hole.shape))


def exact_thin_plate(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """hole * L(L(u)) = 0 (the biharmonic fills' problem), solved exactly."""
    laplacian = no_flux_laplacian(*hole.shape)
    return exact_fill(image, hole, laplacian @ laplacian)


def dense_thick_strokes(size: int) -> np.ndarray:
    """Two seeds of thick brush strokes: 50-70% of the image, no coarse pixel entirely known."""
    hole = np.zeros((size, size), bool)
    strokes = family("strokes_thick")
    for seed in range(2):
        hole |= strokes(np.random.default_rng(seed), size, size).astype(bool)
    assert 0.5 < hole.mean() < 0.7
    return hole


def test_harmonic_fill_solves_dense_brush_strokes_from_their_own_surroundings():
    """Thick strokes over 60% of the image leave no coarse pixel entirely known: the multigrid
    must still start each level from the surroundings (when a coarse pixel counted as known only
    if all of its pixels were, the strokes took the image's mean colour: mean error 0.066, max
    0.32 against the exact solution)."""
    size = 96
    hole = dense_thick_strokes(size)
    ramp = np.linspace(0.0, 1.0, size)[:, None] * np.ones((1, size))
    image = np.stack([0.1 + 0.8 * ramp, 0.9 - 0.8 * ramp, 0.5 + 0.3 * np.sin(6 * ramp)])
    exact = exact_membrane(image, hole)
    filled = harmonic_fill(
        torch.from_numpy(image[None]).float(), torch.from_numpy(hole[None, None]).float()
    )[0].double()
    error = np.abs(filled.numpy() - exact)[:, hole]
    assert error.mean() < 0.01 and error.max() < 0.05, (error.mean(), error.max())


def quadratic_with_box(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth quadratic surface (its Laplacian is a constant, not 0: the membrane fill bends
    it, the thin plate continues it) with a box hole."""
    ys = torch.linspace(0.0, 1.0, size).view(1, 1, size, 1)
    xs = torch.linspace(0.0, 1.0, size).view(1, 1, 1, size)
    surface = 0.2 + 0.5 * xs + 0.3 * ys**2 + torch.zeros(1, 1, size, size)
    mask = torch.zeros(1, 1, size, size)
    mask[..., 20:44, 16:48] = 1
    return surface.expand(1, 3, size, size).contiguous(), mask


@pytest.mark.parametrize(
    "fill, ratio",
    # measured errors: CG 0.0002, Chebyshev with tension 0.0020, the membrane 0.0062
    [(biharmonic_fill, 0.05), (fast_biharmonic_fill, 0.5)],
)
def test_thin_plate_fills_continue_gradients_where_the_membrane_bends_them(fill, ratio):
    image, mask = quadratic_with_box()
    filled = fill(image, mask)
    assert torch.equal(filled * (1 - mask), image * (1 - mask))
    hole = mask.expand_as(image) > 0
    error = (filled - image).abs()[hole].mean()
    membrane_error = (harmonic_fill(image, mask) - image).abs()[hole].mean()
    assert error < ratio * membrane_error, (error, membrane_error)


def test_fast_biharmonic_fill_is_nearer_the_thin_plate_than_the_membrane_under_dense_strokes():
    """Under thick strokes over 60% of the image (the any-known pyramid at work for it too),
    measured mean distance to the exact thin plate: 0.0066, the membrane's 0.0115 (the CG
    biharmonic fill's 0.0040; TENSION keeps it from the thin plate on purpose)."""
    size = 64
    hole = dense_thick_strokes(size)
    ys, xs = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.2 + 0.6 * xs * ys, 0.8 - 0.5 * ys**2, 0.5 + 0.3 * np.sin(3 * xs)])
    exact = exact_thin_plate(image, hole)
    as_tensor = torch.from_numpy(image[None]).float(), torch.from_numpy(hole[None, None]).float()
    fast = np.abs(fast_biharmonic_fill(*as_tensor)[0].double().numpy() - exact)[:, hole].mean()
    membrane = np.abs(harmonic_fill(*as_tensor)[0].double().numpy() - exact)[:, hole].mean()
    assert fast < 0.7 * membrane, (fast, membrane)


def test_biharmonic_fill_is_float32_under_autocast_and_ignores_hidden_pixels():
    image, mask = quadratic_with_box()
    other = image * (1 - mask) + torch.rand_like(image) * mask
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = biharmonic_fill(other.bfloat16(), mask)
    assert under_autocast.dtype == torch.float32
    assert torch.allclose(under_autocast, biharmonic_fill(image, mask), atol=1e-2)
    assert torch.allclose(biharmonic_fill(other, mask), biharmonic_fill(image, mask), atol=1e-6)


class NeighbourMean(torch.nn.Module):
    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return _neighbour_mean(u)


class Laplacian(torch.nn.Module):
    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return _laplacian(u)


def test_the_traced_neighbour_mean_is_one_convolution_equal_to_the_eager_slices():
    """Traced graphs (ONNX, TorchScript) get the convolution, eager torch the slices."""
    traced = torch.jit.trace(NeighbourMean(), torch.rand(1, 3, 8, 8))
    assert "aten::_convolution" in str(traced.graph)
    assert "aten::slice" not in str(traced.graph)
    u = torch.rand(2, 3, 11, 17)  # another size than the traced one
    torch.testing.assert_close(traced(u), _neighbour_mean(u), atol=1e-6, rtol=0)
    # no flux out of the image: a constant is its own neighbours' mean, borders included
    constant = torch.full((1, 3, 5, 7), 0.7)
    torch.testing.assert_close(traced(constant), constant, atol=1e-6, rtol=0)


def test_the_traced_laplacian_is_one_convolution_equal_to_the_eager_one():
    traced = torch.jit.trace(Laplacian(), torch.rand(1, 3, 8, 8))
    assert str(traced.graph).count("aten::_convolution") == 1
    u = torch.rand(2, 3, 11, 17)
    torch.testing.assert_close(traced(u), _laplacian(u), atol=1e-6, rtol=0)


def test_a_harmonic_model_exports_to_a_compact_onnx_graph(tmp_path):
    """The fill's hundreds of sweeps are one convolution each in ONNX, not 4 shifted slices."""
    import collections

    import onnx

    generator = UNet(base_channels=8, bottleneck_blocks=1, fill="harmonic").eval()
    image, mask = torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    path = tmp_path / "model.onnx"
    export_onnx(generator, path, (image, mask), opset=17, metadata={})
    ops = collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    sweeps = sum(HARMONIC_SWEEPS)
    assert ops["Conv"] >= sweeps  # one convolution per sweep ...
    assert ops["Slice"] < 2 * sweeps  # ... where the slices were 8 per sweep (one is F.pad's)


@pytest.mark.parametrize(
    "fill, atol",
    [
        ("harmonic", 1e-4),
        ("fast_biharmonic", 1e-4),  # Chebyshev: no sums over the image to round differently
        # Conjugate gradients amplify the runtimes' different float rounding (the order of
        # their sums): the fill alone differs by up to ~5e-4 in onnxruntime, which a random
        # network amplifies; still within about one 8-bit level. Slow: the export traces the
        # unrolled CG steps (thousands of nodes, ~1 min).
        pytest.param("biharmonic", 6e-3, marks=pytest.mark.slow),
    ],
)
def test_smooth_fill_generators_export_at_untraced_sizes(tmp_path, fill, atol):
    torch.manual_seed(0)
    generator = off_identity(
        UNet(
            base_channels=8,
            bottleneck_channels=None,
            bottleneck_blocks=1,
            fill=fill,
            sees_fill=True,
            residual_reach=None,
        )
    )
    assert_export_parity(generator, tmp_path, "unet", [(48, 64), (40, 24)], box_and_band, atol=atol)
