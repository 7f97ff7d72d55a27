"""Handler resolution: user > framework > toolkit, conflicts, context detection, defaults."""

from __future__ import annotations

import gc
import types
from pathlib import Path

import numpy as np
import pytest

from toolkit.errors import UserCodeError
from toolkit.serving.codecs import default_registry
from toolkit.serving.context import RequestContext
from toolkit.serving.errors import UserCodeFailed
from toolkit.serving.handlers import (
    context_mode,
    find_program,
    load_handlers,
    resolve,
    toolkit_defaults,
)


def module(**functions: object) -> types.ModuleType:
    mod = types.ModuleType("m")
    for name, value in functions.items():
        setattr(mod, name, value)
    return mod


DEFAULTS = toolkit_defaults(default_registry(), "define it")


def test_user_wins_over_framework_wins_over_toolkit() -> None:
    user = module(predict_fn=lambda data, model: "user")
    framework = module(model_fn=lambda d: "fw-model", predict_fn=lambda data, model: "fw",
                       output_fn=lambda p, a: b"fw")
    handlers = resolve(user, framework, DEFAULTS)
    assert handlers.predict_fn.origin == "user module"
    assert handlers.model_fn.origin == "framework defaults"
    assert handlers.output_fn.origin == "framework defaults"
    assert handlers.input_fn.origin == "toolkit"
    assert handlers.transform_fn is None
    assert handlers.custom_output


def test_transform_fn_with_stages_in_one_module_is_a_startup_error() -> None:
    user = module(transform_fn=lambda m, b, c, a: b"", input_fn=lambda b, c: b)
    with pytest.raises(UserCodeError, match="transform_fn and also input_fn"):
        resolve(user, None, DEFAULTS)


def test_user_transform_fn_replaces_framework_stages() -> None:
    user = module(transform_fn=lambda m, b, c, a: b"t")
    framework = module(input_fn=lambda b, c: b)
    handlers = resolve(user, framework, DEFAULTS)
    assert handlers.transform_fn.origin == "user module"
    assert handlers.input_fn is None and handlers.custom_output


def test_user_stages_win_over_framework_transform_fn() -> None:
    handlers = resolve(module(predict_fn=lambda d, m: d), module(transform_fn=lambda m, b, c, a:
                                                                 b""), DEFAULTS)
    assert handlers.transform_fn is None and handlers.predict_fn.origin == "user module"


def test_context_detection() -> None:
    def plain(data, model): ...
    def positional(data, model, context): ...
    def keyword(data, model, *, context=None): ...
    def varargs(*args): ...
    def defaults(data, model, extra=1): ...
    def too_few(data): ...

    assert context_mode("predict_fn", plain, "x") is None
    assert context_mode("predict_fn", positional, "x") == "positional"
    assert context_mode("predict_fn", keyword, "x") == "keyword"
    assert context_mode("predict_fn", varargs, "x") is None
    assert context_mode("predict_fn", defaults, "x") == "positional"
    with pytest.raises(UserCodeError, match="predict_fn must take"):
        context_mode("predict_fn", too_few, "x")


def test_handler_passes_context_and_wraps_user_exceptions() -> None:
    seen = {}

    def predict_fn(data, model, context):
        seen["attrs"] = context.custom_attributes
        raise KeyError("k")

    handlers = resolve(module(predict_fn=predict_fn), None, DEFAULTS)
    context = RequestContext({"X-Amzn-SageMaker-Custom-Attributes": "a=1"}, None, "x/y")
    with pytest.raises(UserCodeFailed) as info:
        handlers.predict_fn(1, None, context=context)
    assert seen["attrs"] == "a=1" and info.value.handler == "predict_fn"


def test_default_predict_prefers_predict_then_call() -> None:
    class WithPredict:
        def predict(self, data):
            return "predict"

        def __call__(self, data):
            return "call"

    predict = DEFAULTS["predict_fn"]
    assert predict(1, WithPredict()) == "predict"
    assert predict(2, lambda x: x * 3) == 6
    with pytest.raises(TypeError, match="define predict_fn"):
        predict(1, object())


def test_default_model_fn_says_it_is_required() -> None:
    handlers = resolve(None, None, DEFAULTS)
    with pytest.raises(UserCodeFailed, match="model_fn is required"):
        handlers.model_fn("/opt/ml/model")


def test_default_input_and_output_use_the_codecs() -> None:
    data = DEFAULTS["input_fn"](b"[[1, 2]]", "application/json; charset=utf-8")
    assert isinstance(data, np.ndarray)
    assert DEFAULTS["output_fn"](data, "text/csv") == b"1,2\n"


def test_find_program_search_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    second.mkdir()
    (second / "inference.py").write_text("")
    assert find_program("inference.py", [first, second]) == second / "inference.py"
    assert find_program("inference", [first, second]) == second / "inference.py"
    first.mkdir()
    (first / "inference.py").write_text("")
    assert find_program("inference.py", [first, second]) == first / "inference.py"
    assert find_program("missing.py", [first, second]) is None


def test_load_handlers_from_files(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "helper.py").write_text("FACTOR = 3\n")
    (code / "inference.py").write_text(
        "import helper\n"
        "batch_max_size = 4\n"
        "def model_fn(model_dir):\n    return helper.FACTOR\n"
        "def batch_predict_fn(inputs, model):\n    return [i * model for i in inputs]\n")
    framework = tmp_path / "framework.py"
    framework.write_text("def output_fn(prediction, accept):\n    return b'fw'\n")
    handlers = load_handlers(program="inference.py", search=[tmp_path / "none", code],
                             default_handlers=str(framework), codecs=default_registry())
    assert handlers.model_fn("x") == 3
    assert handlers.batch_predict_fn([1, 2], 3) == [3, 6]
    assert (handlers.batch_max_size, handlers.batch_max_wait_ms) == (4, 5.0)
    assert handlers.output_fn(1, "a/b") == b"fw"


def test_broken_user_module_is_a_clear_startup_error(tmp_path: Path) -> None:
    (tmp_path / "inference.py").write_text("raise RuntimeError('nope')\n")
    with pytest.raises(UserCodeError, match="importing .*inference.py failed: RuntimeError"):
        load_handlers(program="inference.py", search=[tmp_path], default_handlers=None,
                      codecs=default_registry())
    with pytest.raises(UserCodeError, match="cannot import"):
        load_handlers(program="x.py", search=[tmp_path], default_handlers="no_such_module_xyz",
                      codecs=default_registry())


def test_bad_batch_settings_are_rejected() -> None:
    user = module(batch_predict_fn=lambda inputs, model: inputs, batch_max_size=0)
    with pytest.raises(UserCodeError, match="batch_max_size"):
        resolve(user, None, DEFAULTS)
    with pytest.raises(UserCodeError, match="cannot be combined"):
        resolve(module(batch_predict_fn=lambda i, m: i, transform_fn=lambda m, b, c, a: b""),
                None, DEFAULTS)


@pytest.mark.parametrize("style", ["none", "positional", "keyword"])
def test_bound_handlers_call_like_the_handler(style: str) -> None:
    from toolkit.serving.handlers import Handler, context_mode

    def plain(data, model):
        return (data, model, None)

    def positional(data, model, context):
        return (data, model, context)

    def keyword(data, model, *, context):
        return (data, model, context)

    fn = {"none": plain, "positional": positional, "keyword": keyword}[style]
    handler = Handler("predict_fn", fn, "x", context_mode("predict_fn", fn, "x"))
    bound = handler.bind()
    expected = (1, 2, "ctx" if style != "none" else None)
    assert bound(1, 2, "ctx") == handler(1, 2, context="ctx") == expected


def test_bound_handlers_wrap_user_exceptions_once() -> None:
    from toolkit.serving.handlers import Handler

    def fails(data, model):
        raise KeyError("k")

    def passes_on(data, model):
        raise UserCodeFailed("inner_fn", ValueError("v"))

    with pytest.raises(UserCodeFailed) as info:
        Handler("predict_fn", fails, "x").bind()(1, 2, None)
    assert info.value.handler == "predict_fn" and isinstance(info.value.cause, KeyError)
    with pytest.raises(UserCodeFailed) as info:
        Handler("predict_fn", passes_on, "x").bind()(1, 2, None)
    assert info.value.handler == "inner_fn" and info.value.__cause__ is None


def test_pipeline_runs_the_same_chain_as_run() -> None:
    from toolkit.serving.pipeline import Pipeline, run

    handlers = resolve(module(predict_fn=lambda data, model: data * model,
                              output_fn=lambda p, accept: (str(p.tolist()), "text/x-list")),
                       None, DEFAULTS)
    context = RequestContext({}, "application/json", "text/x-list")
    args = (3, b"[1, 2]", "application/json", "text/x-list", context)
    assert Pipeline(handlers).run(*args) == run(handlers, *args) == (b"[3, 6]", "text/x-list")
    bad = resolve(module(output_fn=lambda p, accept: ("x", "text/a\r\nX-Evil: 1")), None,
                  DEFAULTS)
    with pytest.raises(UserCodeFailed, match="line break"):
        Pipeline(bad).run(lambda d: d, b"[1]", "application/json", "a/b", context)


# -- model_fn runs with the cyclic collector paused (cold start, docs/images.md) -------------

def test_model_fn_runs_with_the_collector_paused_and_restores_it() -> None:
    seen = []

    def model_fn(model_dir: str, context: object = None) -> str:
        seen.append((gc.isenabled(), model_dir, context))
        return "model"

    handlers = resolve(module(model_fn=model_fn), None, DEFAULTS)
    assert gc.isenabled()
    assert handlers.model_fn("/m", context="ctx") == "model"
    assert seen == [(False, "/m", "ctx")]  # the context still reaches it
    assert gc.isenabled()


def test_a_failing_model_fn_still_restores_the_collector() -> None:
    def model_fn(model_dir: str) -> None:
        assert not gc.isenabled()
        raise ValueError("bad model")

    handlers = resolve(module(model_fn=model_fn), None, DEFAULTS)
    with pytest.raises(UserCodeFailed):
        handlers.model_fn("/m")
    assert gc.isenabled()


def test_a_collector_the_user_turned_off_stays_off() -> None:
    handlers = resolve(module(model_fn=lambda model_dir: "m"), None, DEFAULTS)
    gc.disable()
    try:
        assert handlers.model_fn("/m") == "m"
        assert not gc.isenabled()
    finally:
        gc.enable()
