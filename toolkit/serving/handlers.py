"""Finding and loading the inference handlers: user module, framework defaults, toolkit defaults.

Resolution, per handler name: the user's module (``SAGEMAKER_PROGRAM``) wins, then the
framework image's defaults (``OPTML_DEFAULT_HANDLERS``), then the toolkit's. Whether a handler
takes a trailing ``context`` is decided here, once, from its signature, so the request path does
no introspection. Every mistake we can see before taking traffic (both ``transform_fn`` and the
three-stage handlers in one module, wrong arity, missing file) is a start-up error.
"""

from __future__ import annotations

import functools
import gc
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from toolkit.errors import UserCodeError
from toolkit.serving.codecs import CodecRegistry
from toolkit.serving.errors import UserCodeFailed
from toolkit.serving.negotiation import parse_content_type

log = logging.getLogger("optml.serving")

ARITY: Mapping[str, int] = {
    "model_fn": 1,
    "input_fn": 2,
    "predict_fn": 2,
    "output_fn": 2,
    "transform_fn": 4,
    "batch_predict_fn": 2,
    "execution_parameters_fn": 0,
}
"""Positional arguments of each handler, without the optional trailing ``context``."""

STAGES = ("input_fn", "predict_fn", "output_fn")
DEFAULT_BATCH_MAX_SIZE = 8
DEFAULT_BATCH_MAX_WAIT_MS = 5.0


@dataclass(frozen=True)
class Handler:
    """A handler function, where it came from, and how to pass ``context`` to it."""

    name: str
    fn: Callable[..., Any]
    origin: str
    context: str | None = None
    """``None``: no context; ``"positional"`` or ``"keyword"``: how to pass it."""

    def __call__(self, *args: Any, context: Any = None) -> Any:
        try:
            if self.context == "positional":
                return self.fn(*args, context)
            if self.context == "keyword":
                return self.fn(*args, context=context)
            return self.fn(*args)
        except UserCodeFailed:
            raise
        except Exception as exc:
            raise UserCodeFailed(self.name, exc) from exc

    def bind(self) -> Callable[..., Any]:
        """The same call as :meth:`__call__`, specialised once for the request path.

        The returned function always takes the context as its *last positional* argument and
        passes it on the way the signature wants, with no per-call branching or keyword
        packing: ``bind()(data, model, context)``.
        """
        fn, name, mode = self.fn, self.name, self.context

        if mode == "positional":
            def call(*args: Any) -> Any:
                try:
                    return fn(*args)
                except UserCodeFailed:
                    raise
                except Exception as exc:
                    raise UserCodeFailed(name, exc) from exc
        elif mode == "keyword":
            def call(*args: Any) -> Any:
                try:
                    return fn(*args[:-1], context=args[-1])
                except UserCodeFailed:
                    raise
                except Exception as exc:
                    raise UserCodeFailed(name, exc) from exc
        else:
            def call(*args: Any) -> Any:
                try:
                    return fn(*args[:-1])
                except UserCodeFailed:
                    raise
                except Exception as exc:
                    raise UserCodeFailed(name, exc) from exc
        return call


def context_mode(name: str, fn: Callable[..., Any], origin: str) -> str | None:
    """Decide once whether ``fn`` wants a trailing context; reject signatures that cannot work."""
    arity = ARITY[name]
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None  # builtins without signatures: call classically
    kinds = inspect.Parameter
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY,
                                                  kinds.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == kinds.VAR_POSITIONAL for p in params)
    required = [p for p in positional if p.default is kinds.empty]
    keyword_context = any(p.name == "context" and p.kind == kinds.KEYWORD_ONLY for p in params)
    if len(required) > arity + 1 or (not varargs and len(positional) < arity):
        wanted = ", ".join([f"arg{i + 1}" for i in range(arity)] + ["[context]"])
        raise UserCodeError(f"{origin}: {name} must take ({wanted}), "
                            f"its signature is {name}{inspect.signature(fn)}")
    if keyword_context:
        return "keyword"
    if len(positional) > arity:
        return "positional"
    return None


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block, back to what it was after.

    Why: ``model_fn`` mostly imports a framework (scikit-learn's unpickle imports scipy, sklearn,
    joblib: ~1,400 modules). That allocates hundreds of thousands of long-lived objects and
    almost no garbage, yet every 700 allocations start a collection that walks the young ones
    and, ever so often, the whole growing heap: about 7-10 % of the load's CPU in the sklearn
    image (docs/images.md, "Cold start"). Collections resume at the usual thresholds after.
    Nested or concurrent pauses (multi-model loads in threads) leave it enabled once the
    outermost one that found it enabled ends; a collector the user turned off stays off.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _loading(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``model_fn`` run with the collector paused (:func:`gc_paused`)."""

    @functools.wraps(fn)
    def load(*args: Any, **kwargs: Any) -> Any:
        with gc_paused():
            return fn(*args, **kwargs)

    return load


def _import_file(path: Path) -> ModuleType:
    """Import a ``.py`` file as a module; its directory goes first on sys.path (siblings import)."""
    name = f"optml_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserCodeError(f"{path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise UserCodeError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def find_program(program: str, search: Sequence[Path]) -> Path | None:
    """The user's inference module: the first of ``search`` holding ``program`` (``.py`` implied)."""
    relative = Path(program if program.endswith(".py") else f"{program}.py")
    if relative.is_absolute():
        return relative if relative.is_file() else None
    for directory in search:
        candidate = directory / relative
        if candidate.is_file():
            return candidate
    return None


def load_framework_module(spec: str) -> ModuleType:
    """``OPTML_DEFAULT_HANDLERS``: a ``.py`` path or an importable module name."""
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise UserCodeError(f"OPTML_DEFAULT_HANDLERS: file {spec} does not exist")
        return _import_file(path)
    try:
        return importlib.import_module(spec)
    except ImportError as exc:
        raise UserCodeError(f"OPTML_DEFAULT_HANDLERS: cannot import {spec!r}: {exc}") from exc


def _functions(module: ModuleType | None) -> dict[str, Callable[..., Any]]:
    if module is None:
        return {}
    found = {}
    for name in ARITY:
        value = getattr(module, name, None)
        if value is not None:
            if not callable(value):
                raise UserCodeError(f"{module.__file__ or module.__name__}: {name} is not callable")
            found[name] = value
    return found


def _check_conflict(functions: Mapping[str, Any], origin: str) -> None:
    stages = [name for name in STAGES if name in functions]
    if "transform_fn" in functions and stages:
        raise UserCodeError(
            f"{origin} defines transform_fn and also {', '.join(stages)}: transform_fn replaces "
            "input_fn/predict_fn/output_fn, define either it or them, not both")


def toolkit_defaults(codecs: CodecRegistry, model_fn_help: str) -> dict[str, Callable[..., Any]]:
    """The toolkit's handlers: codec-registry input/output, predict via the model's API."""

    def model_fn(model_dir: str) -> Any:
        raise UserCodeError(f"model_fn is required: {model_fn_help}")

    def input_fn(body: bytes, content_type: str | None) -> Any:
        return codecs.decode(body, parse_content_type(content_type))

    def predict_fn(data: Any, model: Any) -> Any:
        predict = getattr(model, "predict", None)
        if callable(predict):
            return predict(data)
        if callable(model):
            return model(data)
        raise TypeError(f"the model ({type(model).__name__}) has no predict() and is not "
                        "callable; define predict_fn(data, model)")

    def output_fn(prediction: Any, accept: str) -> bytes:
        return codecs.encode(prediction, accept)

    return {"model_fn": model_fn, "input_fn": input_fn, "predict_fn": predict_fn,
            "output_fn": output_fn}


@dataclass(frozen=True)
class HandlerSet:
    """The resolved handlers of this server."""

    model_fn: Handler
    input_fn: Handler | None
    predict_fn: Handler | None
    output_fn: Handler | None
    transform_fn: Handler | None = None
    batch_predict_fn: Handler | None = None
    execution_parameters_fn: Handler | None = None
    batch_max_size: int = DEFAULT_BATCH_MAX_SIZE
    batch_max_wait_ms: float = DEFAULT_BATCH_MAX_WAIT_MS
    sources: tuple[str, ...] = field(default_factory=tuple)

    @property
    def custom_output(self) -> bool:
        """True when user or framework code produces the response bytes: it may produce types
        the codec registry does not know, so negotiation must not be limited to the registry."""
        if self.transform_fn is not None:
            return True
        return self.output_fn is not None and self.output_fn.origin != "toolkit"


def _positive_number(module: ModuleType | None, name: str, default: float, origin: str) -> float:
    value = getattr(module, name, default) if module is not None else default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise UserCodeError(f"{origin}: {name} must be a positive number, got {value!r}")
    return value


def resolve(user: ModuleType | None, framework: ModuleType | None, defaults:
            Mapping[str, Callable[..., Any]], *, user_origin: str = "user module",
            framework_origin: str = "framework defaults") -> HandlerSet:
    """Combine the three layers into one :class:`HandlerSet` (see the module docstring)."""
    user_fns, fw_fns = _functions(user), _functions(framework)
    _check_conflict(user_fns, user_origin)
    _check_conflict(fw_fns, framework_origin)

    def pick(name: str, layers: Sequence[tuple[Mapping[str, Any], str]]) -> Handler | None:
        for functions, origin in layers:
            if name in functions:
                return Handler(name, functions[name], origin,
                               context_mode(name, functions[name], origin))
        return None

    everything = [(user_fns, user_origin), (fw_fns, framework_origin), (defaults, "toolkit")]
    use_transform = "transform_fn" in user_fns or (
        "transform_fn" in fw_fns and not any(s in user_fns for s in STAGES))
    model_fn = pick("model_fn", everything)
    assert model_fn is not None  # the toolkit always has one
    model_fn = Handler(model_fn.name, _loading(model_fn.fn), model_fn.origin, model_fn.context)
    if use_transform:
        transform = pick("transform_fn", everything)
        stages: dict[str, Handler | None] = {s: None for s in STAGES}
    else:
        transform = None
        stages = {s: pick(s, everything) for s in STAGES}
    batch = pick("batch_predict_fn", [(user_fns, user_origin), (fw_fns, framework_origin)])
    if batch is not None and batch.context is not None:
        raise UserCodeError(f"{batch.origin}: batch_predict_fn takes (inputs, model) only")
    if batch is not None and transform is not None:
        raise UserCodeError(f"{batch.origin}: batch_predict_fn needs input_fn/output_fn, "
                            "it cannot be combined with transform_fn")
    batch_module = user if batch is not None and batch.origin == user_origin else framework
    return HandlerSet(
        model_fn=model_fn,
        input_fn=stages["input_fn"],
        predict_fn=stages["predict_fn"],
        output_fn=stages["output_fn"],
        transform_fn=transform,
        batch_predict_fn=batch,
        execution_parameters_fn=pick("execution_parameters_fn",
                                     [(user_fns, user_origin), (fw_fns, framework_origin)]),
        batch_max_size=int(_positive_number(batch_module, "batch_max_size",
                                       DEFAULT_BATCH_MAX_SIZE, "batch settings")),
        batch_max_wait_ms=float(_positive_number(batch_module, "batch_max_wait_ms",
                                            DEFAULT_BATCH_MAX_WAIT_MS, "batch settings")),
        sources=tuple(o for o in (user_origin if user else None,
                                  framework_origin if framework else None) if o),
    )


def load_handlers(*, program: str, search: Sequence[Path], default_handlers: str | None,
                  codecs: CodecRegistry) -> HandlerSet:
    """Import the user's module (if any) and the framework defaults, and resolve the handlers."""
    path = find_program(program, search)
    searched = ", ".join(str(d) for d in search)
    if path is None:
        log.info("no %s in %s: using default handlers only", program, searched)
    user = _import_file(path) if path is not None else None
    framework = load_framework_module(default_handlers) if default_handlers else None
    help_text = (f"define model_fn(model_dir) in {path}" if path is not None else
                 f"no {program} found in {searched}; put one defining model_fn(model_dir) there")
    handlers = resolve(user, framework, toolkit_defaults(codecs, help_text),
                       user_origin=str(path) if path else "user module",
                       framework_origin=f"OPTML_DEFAULT_HANDLERS={default_handlers}")
    log.info("handlers: %s", ", ".join(
        f"{h.name} from {h.origin}" for h in (handlers.model_fn, handlers.transform_fn,
                                             handlers.input_fn, handlers.predict_fn,
                                             handlers.output_fn, handlers.batch_predict_fn)
        if h is not None))
    return handlers

