"""Model zoo: shapes, gradients, torchvision parity, MAC counts, init schemes, option errors, a VGG
fed too small an input, and the declarations (deepcls.models.catalog) every model is built from,
read without torch."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable

import pytest
import torch
import torchvision
from helpers import toy
from torch import nn

from deepcls.errors import ConfigError
from deepcls.models import (
    INIT_SCHEMES,
    build_model,
    catalog,
    init_weights,
    list_models,
    model_info,
    model_summary,
    register_family,
    register_model,
    resnet,
)
from deepcls.models import init as init_module

FAST_VGG = {"width": "reduced", "classifier_width": 64}
BUILT_IN = ["resnet18", "resnet34", "resnet50", "vgg7", "vgg9", "vgg11", "vgg13", "vgg16", "vgg19"]
# Options that keep a family's models small enough for these tests; a family not named here (one a
# user registered) is built with its declared defaults.
SMALL = {"vgg": {"classifier_width": 64}}


def _variants() -> list[tuple[str, dict]]:
    """Every registered model at its family's declared defaults (plus :data:`SMALL`), each ResNet
    with every stem, and a few option combinations of the built-in families."""
    out: list[tuple[str, dict]] = []
    for name in list_models():
        family = model_info(name).declaration
        options = {**family.defaults, **SMALL.get(family.name, {})}
        out.append((name, options))
        if "stem" in family.options:
            out += [(name, {**options, "stem": stem}) for stem in catalog.RESNET_STEMS if stem != options.get("stem")]
    return out + [
        ("vgg16", {"width": "standard"}),
        ("resnet18", {"stem": "cifar", "se": True}),
        ("vgg9", {**FAST_VGG, "batch_norm": True, "first_kernel": 5}),
    ]


def _forward_backward(model: nn.Module, shape: tuple[int, int, int]) -> None:
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10)
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(
    ("name", "options"), _variants(), ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values()))
)
def test_forward_backward_mnist_and_cifar(name: str, options: dict) -> None:
    torch.manual_seed(0)
    side = model_info(name).min_input_size
    _forward_backward(build_model(name, in_channels=1, **options), (1, side, side))
    _forward_backward(build_model(name, in_channels=3, **options), (3, 32, 32))


def test_list_and_info() -> None:
    assert list_models()[: len(BUILT_IN)] == BUILT_IN  # the built-in ones first; a user's own follow
    sizes = {name: model_info(name).min_input_size for name in BUILT_IN}
    assert sizes == {
        "resnet18": 28,
        "resnet34": 28,
        "resnet50": 28,
        "vgg7": 28,
        "vgg9": 28,
        "vgg11": 32,
        "vgg13": 32,
        "vgg16": 32,
        "vgg19": 32,
    }
    assert model_info("resnet50").family == "resnet" and model_info("resnet50").options == ("stem", "se")
    assert model_info("vgg7").family == "vgg" and "width" in model_info("vgg7").options
    assert dict(model_info("resnet18").declaration.defaults) == {"stem": "imagenet", "se": False}
    assert dict(model_info("vgg16").declaration.defaults) == {"width": "reduced"}
    assert model_info("resnet18").declaration.batch_norm_always and not model_info("vgg7").declaration.batch_norm_always


def test_torch_side_builds_every_declared_table_entry() -> None:
    """The torch modules read the catalog's tables: every declared stem, block kind and init scheme
    has its code, and the ResNet layouts are the declared ones."""
    assert tuple(resnet.STEMS) == catalog.RESNET_STEMS
    assert tuple(init_module._INITIALISERS) == INIT_SCHEMES
    assert {name: layers for name, (_, layers) in resnet.ARCHS.items()} == {
        name: layers for name, (_, layers) in catalog.RESNET_ARCHS.items()
    }


def test_metadata_imports_no_torch() -> None:
    """Names, families, options and init schemes are read without importing torch (the CLI's help, the
    results table and the ledger need them); building a model then imports it on demand."""
    code = (
        "import sys; import deepcls.models as m; from deepcls.models import INIT_SCHEMES, check_option, "
        "list_models, model_info; list_models(); model_info('vgg7').declaration; check_option('stem', 'cifar'); "
        "print('torch' in sys.modules); from deepcls.models import build_model; print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_a_family_of_ones_own_is_built_validated_and_listed(own_registry: None) -> None:
    from deepcls.config import RunConfig

    family = register_family("toy", builder=toy, options=("batch_norm",), defaults={"batch_norm": False})
    info = register_model("toy1", "toy", min_input_size=8)
    assert info == model_info("toy1") and info.declaration is family and info.options == ("batch_norm",)
    assert list_models()[-1] == "toy1" and catalog.list_families()[-1] == "toy"
    model = build_model("toy1", in_channels=1, batch_norm=True, init="he")
    assert isinstance(model.body[1], nn.BatchNorm2d) and model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ConfigError, match="option 'se' does not apply to toy1; accepted: batch_norm"):
        build_model("toy1", se=True)
    assert RunConfig(dataset="mnist", model="toy1", batch_norm=True).model_options() == {"batch_norm": True}
    with pytest.raises(ConfigError, match="model toy1 has no option 'stem'; it accepts: batch_norm"):
        RunConfig(dataset="mnist", model="toy1", stem="cifar")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: register_family("resnet", builder=toy), "family 'resnet' is already registered"),
        (lambda: register_model("vgg7", "vgg"), "model 'vgg7' is already registered"),
        (lambda: register_model("toy2", "toys"), "unknown family 'toys'; known: resnet, vgg"),
        (lambda: register_model("Toy-2", "vgg"), "bad model name 'Toy-2'"),
        (lambda: register_model("toy2", "vgg", min_input_size=0), "min_input_size must be a positive integer"),
        (lambda: register_family("toy", builder="not a path"), "builder must be a callable or 'module:function'"),
        (lambda: register_family("toy", builder=toy, options=("depth",)), "option(s) 'depth' unknown or repeated"),
        (lambda: register_family("toy", builder=toy, options="se"), "options must be a sequence of option names"),
        (lambda: register_family("toy", builder=toy, defaults={"se": True}), "not one of its options"),
        (
            lambda: register_family("toy", builder=toy, options=("se",), defaults={"se": "yes"}),
            "bad value for option 'se'",
        ),
        (lambda: register_family("toy", builder=toy, best_lr=-1), "best_lr must be a positive finite number"),
        (lambda: register_family("toy", builder=toy, batch_norm_always=1), "batch_norm_always must be True or"),
    ],
)
def test_a_bad_declaration_is_one_config_error(own_registry: None, call: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_builder_that_cannot_build_is_one_config_error(own_registry: None) -> None:
    register_family("lost", builder="deepcls.models.nowhere:build")
    register_model("lost1", "lost")
    with pytest.raises(ConfigError, match="family lost: cannot import its builder 'deepcls.models.nowhere:build'"):
        build_model("lost1")
    register_family("odd", builder=lambda name, **options: "not a module")
    register_model("odd1", "odd")
    with pytest.raises(ConfigError, match="the builder of family odd returned str, not an nn.Module"):
        build_model("odd1")


# (block expansion, blocks per stage) from the ResNet paper
ARCHS = {"resnet18": (1, (2, 2, 2, 2)), "resnet34": (1, (3, 4, 6, 3)), "resnet50": (4, (3, 4, 6, 3))}


@pytest.mark.parametrize("name", list(ARCHS))
def test_resnet_matches_torchvision_and_se_adds_exact_params(name: str) -> None:
    reference = getattr(torchvision.models, name)()
    model = build_model(name, stem="imagenet", in_channels=3, num_classes=1000)
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters())
    model.load_state_dict(reference.state_dict())  # same keys and shapes

    expansion, blocks = ARCHS[name]
    channels = [planes * expansion for planes, n in zip((64, 128, 256, 512), blocks) for _ in range(n)]
    se_params = sum(2 * c * (c // 16) + c // 16 + c for c in channels)
    se_model = build_model(name, stem="imagenet", num_classes=1000, se=True)
    assert sum(p.numel() for p in se_model.parameters()) == count + se_params


def test_summary_resnet18_imagenet_macs() -> None:
    summary = model_summary(build_model("resnet18", num_classes=1000), (3, 224, 224))
    assert summary["params"] == 11_689_512
    assert summary["macs"] == pytest.approx(1.81e9, rel=0.02)


def test_summary_hand_checked_and_restores_mode() -> None:
    assert model_summary(nn.Linear(10, 5), (10,)) == {"params": 55, "macs": 50}
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 8 * 8, 4))
    net[0].bias.requires_grad_(False)
    summary = model_summary(net.train(), (3, 8, 8))
    assert summary == {"params": 8 * 27 + 512 * 4 + 4, "macs": 8 * 8 * 8 * 27 + 512 * 4}
    assert net.training and all(m.training for m in net.modules())
    assert not net[0]._forward_hooks


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 8, 8), "the network cannot take 1x8x8 inputs: Given groups=1, weight of size [8, 3, 3, 3]"),
        ((3, 4, 4), "the network cannot take 3x4x4 inputs: mat1 and mat2 shapes cannot be multiplied"),
        ("3,8,8", "input_shape must be positive whole numbers such as (3, 32, 32), got '3,8,8'"),
        ((3, 0, 8), "input_shape must be positive whole numbers"),
        ((), "input_shape must be positive whole numbers"),
    ],
)
def test_a_summary_of_an_input_the_network_cannot_take_is_one_config_error(shape: object, message: str) -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 8 * 8, 4)).train()
    with pytest.raises(ConfigError) as info:
        model_summary(net, shape)  # type: ignore[arg-type]
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert net.training


def _expected_std(scheme: str, fan_in: int, fan_out: int) -> float:
    return {
        "xavier_uniform": math.sqrt(6 / (fan_in + fan_out)) / math.sqrt(3),
        "xavier_normal": math.sqrt(2 / (fan_in + fan_out)),
        "he_uniform": math.sqrt(6 / fan_in) / math.sqrt(3),
        "he_normal": math.sqrt(2 / fan_in),
    }[{"xavier": "xavier_uniform", "he": "he_normal"}.get(scheme, scheme)]


@pytest.mark.parametrize("scheme", [s for s in INIT_SCHEMES if s != "default"])
def test_init_scheme_std_and_zero_bias(scheme: str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(128, 256, 3), nn.BatchNorm2d(256), nn.Linear(1000, 500))
    nn.init.normal_(net[1].weight)
    nn.init.normal_(net[1].bias)
    assert init_weights(net, scheme) is net
    for layer, fan_in, fan_out in ((net[0], 128 * 9, 256 * 9), (net[2], 1000, 500)):
        expected = _expected_std(scheme, fan_in, fan_out)
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.05)
        if "uniform" in scheme or scheme == "xavier":
            assert layer.weight.abs().max().item() <= expected * math.sqrt(3)
        assert torch.all(layer.bias == 0)
    assert torch.all(net[1].weight == 1) and torch.all(net[1].bias == 0)


def test_default_init_leaves_weights_unchanged() -> None:
    torch.manual_seed(0)
    reference = build_model("resnet18", stem="cifar")
    torch.manual_seed(0)
    model = init_weights(build_model("resnet18", stem="cifar"), "default")
    for (key, value), expected in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(value, expected), key
    torch.manual_seed(0)
    he = build_model("resnet18", stem="cifar", init="he")
    assert not torch.equal(he.conv1.weight, reference.conv1.weight)
    assert torch.all(he.fc.bias == 0)


def test_vgg_first_kernel_width_and_batch_norm() -> None:
    model = build_model("vgg7", in_channels=1, first_kernel=5, batch_norm=True, **FAST_VGG)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert (convs[0].kernel_size, convs[0].padding) == ((5, 5), (2, 2))
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs[1:])
    assert [c.out_channels for c in convs] == [16, 32, 64, 64]
    assert [type(m).__name__ for m in model.features[:4]] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    reduced = build_model("vgg11", width="reduced")
    assert [m.out_channels for m in reduced.modules() if isinstance(m, nn.Conv2d)] == [
        16,
        32,
        64,
        64,
        128,
        128,
        128,
        128,
    ]


def test_vgg_depths() -> None:
    for name, convs in {"vgg7": 4, "vgg9": 6, "vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16}.items():
        model = build_model(name, **FAST_VGG)
        assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == convs
        assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 3


def test_vgg16_matches_report_figure5() -> None:
    model = build_model("vgg16", width="standard")
    text = str(model)
    assert text.count("Conv2d(") == 13 and text.count("MaxPool2d(") == 5
    assert "BatchNorm" not in text
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears == [(512, 4096), (4096, 4096), (4096, 10)]
    assert [type(m).__name__ for m in model.classifier] == [
        "Flatten",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
    ]
    assert text.count("Dropout(p=0.5") == 2
    assert model.features(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 1, 1)  # avgpool is identity


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"name": "resnet19"}, "resnet19"),
        ({"name": "vgg16", "stem": "cifar"}, "stem"),
        ({"name": "resnet18", "width": "reduced"}, "width"),
        ({"name": "resnet18", "stem": "foo"}, "foo"),
        ({"name": "resnet18", "se": "yes"}, "se"),
        ({"name": "vgg7", "width": "huge"}, "huge"),
        ({"name": "vgg7", "first_kernel": 7}, "first_kernel"),
        ({"name": "vgg7", "dropout": 1.5}, "dropout"),
        ({"name": "vgg7", "classifier_width": 0}, "classifier_width"),
        ({"name": "vgg7", "in_channels": 0}, "in_channels"),
        ({"name": "resnet18", "num_classes": 1}, "num_classes"),
        ({"name": "resnet18", "stem": "cifar", "init": "glorot"}, "glorot"),
    ],
)
def test_errors_name_the_bad_thing(kwargs: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=f"'{named}'") as info:
        build_model(**kwargs)
    assert "\n" not in str(info.value)


def test_error_messages_list_known_values_and_none_is_ignored() -> None:
    with pytest.raises(ConfigError, match="known: resnet18, resnet34, resnet50, vgg7"):
        model_info("resnet19")
    with pytest.raises(ConfigError, match="accepted: stem, se"):
        build_model("resnet18", dropout=0.1)
    with pytest.raises(ConfigError, match="xavier_uniform"):
        init_weights(nn.Linear(2, 2), "glorot")
    model = build_model("vgg7", stem=None, se=None, width="reduced", classifier_width=64, dropout=None)
    assert model.classifier[3].p == 0.5


def test_a_vgg_says_what_input_it_needs() -> None:
    model = build_model("vgg16", in_channels=1, width="reduced", classifier_width=16).eval()
    with pytest.raises(ConfigError, match=r"needs inputs of at least 32x32 \(5 2x2 poolings\), got 28x28; zero-pad"):
        model(torch.zeros(2, 1, 28, 28))
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    assert build_model("vgg7", in_channels=1, width="reduced", classifier_width=16)(torch.zeros(2, 1, 28, 28)).shape
