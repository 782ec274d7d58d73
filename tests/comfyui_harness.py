"""A real ComfyUI with this repository as a custom node: start it, talk to it, stop it.

Registered as a pytest plugin in tests/conftest.py. Its fixtures need a ComfyUI checkout
and a Python that runs it, named by two environment variables::

    COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/venv/bin/python \
        python -m pytest -q tests/test_comfyui_real.py

Without them every test using these fixtures is skipped with one line saying so.

- ``comfyui_env`` (session): the checkout and its Python, or a skip.
- ``comfyui_models`` (session): tiny SD1.5 checkpoint, LoRA, UNet and TAESD files built once
  per session with ComfyUI's own classes (``tests/comfyui_fixtures.py``).
- ``comfyui`` (session): a started ``ComfyUI``. Its base folder (``ComfyBase``) has
  ``custom_nodes/hikaze-model-manager`` -> this repository, ``models/<type>/`` folders, input,
  output, temp and user folders, and an ``extra_model_paths.yaml`` naming a second models
  folder (``extra/<type>/``). At start the fixture checkpoint and UNet lie in ``models/``, the
  LoRA and the VAE in ``extra/`` (so finding them proves the extra paths are honoured).
  ComfyUI runs with ``--cpu --disable-all-custom-nodes --whitelist-custom-nodes
  hikaze-model-manager``, ``HIKAZE_DATA_DIR`` in the session's temp folder, and its whole
  output (stdout and stderr) in ``comfyui.log``.

``ComfyUI`` offers ``queue_prompt`` (-> prompt_id, or ``PromptRefused`` with ComfyUI's raw 400
body), ``submit_prompt`` (-> status and raw body), ``wait_for`` (-> the ``/history`` entry),
``run_prompt`` (both, and the run must succeed), ``free`` (drop ComfyUI's node cache),
``log_text``/``log_tail``, and the library's ``/hikaze/api`` (``scan``, ``wait_for_model``).
Tests share one ComfyUI (start-up costs 15-100 s), so each test uses its own model copies
(``ComfyBase.place``, a new SHA-256 each) and its own output prefixes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.comfyui_fixtures import ModelFixtures, build_model_fixtures, copy_with_metadata
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
NODE_DIR_NAME = "hikaze-model-manager"
SKIP_REASON = "set COMFYUI_DIR and COMFYUI_PYTHON to run the real-ComfyUI tests (see README)"
MODEL_FOLDERS = ("checkpoints", "loras", "vae", "diffusion_models", "embeddings", "clip")
START_TIMEOUT = float(os.environ.get("COMFYUI_START_TIMEOUT", "300"))
PROMPT_TIMEOUT = 300.0


# ---------------------------------------------------------------- environment
@dataclass(frozen=True)
class ComfyEnv:
    comfyui_dir: Path
    python: str


def comfy_env_from(environ: dict[str, str] | os._Environ | None = None) -> ComfyEnv | None:
    """The ComfyUI checkout and Python named by COMFYUI_DIR / COMFYUI_PYTHON, or None."""
    environ = os.environ if environ is None else environ
    directory, python = environ.get("COMFYUI_DIR"), environ.get("COMFYUI_PYTHON")
    if not directory or not python:
        return None
    comfy_dir = Path(directory).resolve()
    if not (comfy_dir / "main.py").is_file():
        raise RuntimeError(f"COMFYUI_DIR={directory} has no main.py")
    if not os.access(python, os.X_OK):
        raise RuntimeError(f"COMFYUI_PYTHON={python} is not an executable")
    return ComfyEnv(comfy_dir, python)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without HIKAZE_* settings, plus the test's data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKAZE_")}
    env.pop("PYTHONPATH", None)  # ComfyUI imports our package through custom_nodes only
    env["HIKAZE_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# ---------------------------------------------------------------- the base folder
class ComfyBase:
    """A ComfyUI ``--base-directory`` with our package linked in, and an extra models folder."""

    def __init__(self, root: Path, *, link_package: bool = True) -> None:
        self.root = root
        self.base = root / "base"
        self.models = self.base / "models"
        self.extra = root / "extra"
        self.data_dir = root / "hikaze-data"
        self.extra_yaml = root / "extra_model_paths.yaml"
        self.log_path = root / "comfyui.log"
        for sub in ("custom_nodes", "input", "output", "temp", "user"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        for folder in MODEL_FOLDERS:
            (self.models / folder).mkdir(parents=True, exist_ok=True)
            (self.extra / folder).mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = ["hikaze_tests_extra:", f"    base_path: {json.dumps(str(self.extra))}"]
        lines += [f"    {folder}: {folder}" for folder in MODEL_FOLDERS]
        self.extra_yaml.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if link_package:
            self.link_package()

    @property
    def node_link(self) -> Path:
        return self.base / "custom_nodes" / NODE_DIR_NAME

    def link_package(self) -> None:
        if not self.node_link.is_symlink():
            self.node_link.symlink_to(REPO, target_is_directory=True)

    @property
    def output(self) -> Path:
        return self.base / "output"

    def place(
        self, src: Path, folder: str, name: str, *, extra: bool = False, tag: str | None = None
    ) -> Path:
        """Copy a fixture into ``models/<folder>/<name>`` (or ``extra/...``).

        With ``tag`` the copy's safetensors metadata carries it, so the copy has a SHA-256 of
        its own (same tensors); without, the file is a plain copy.
        """
        dst = (self.extra if extra else self.models) / folder / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if tag is None:
            shutil.copyfile(src, dst)
        else:
            copy_with_metadata(src, dst, {"hikaze_test_copy": tag})
        return dst

    def outputs(self, prefix: str) -> list[Path]:
        """Files ComfyUI saved under ``output/`` whose name starts with ``prefix``'s stem."""
        folder = self.output / Path(prefix).parent
        stem = Path(prefix).name
        return sorted(folder.glob(f"{stem}_*")) if folder.is_dir() else []


# ---------------------------------------------------------------- HTTP
class HTTPResult:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def __repr__(self) -> str:
        return f"HTTPResult({self.status}, {self.body[:300]!r})"


def http(method: str, url: str, payload: Any = None, timeout: float = 30.0) -> HTTPResult:
    """One request with the standard library; any status comes back (no exception)."""
    data = None if payload is None else json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HTTPResult(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return HTTPResult(exc.code, exc.read())


class PromptRefused(AssertionError):
    """ComfyUI answered POST /prompt with an error: ``status`` and the raw ``body``.

    A validation failure is 400 ``{"error": {"type": "prompt_outputs_failed_validation",
    "message", "details", "extra_info"}, "node_errors": {node_id: {"errors": [{"type":
    "custom_validation_failed", "message", "details", "extra_info": {"input_name"}}],
    "dependent_outputs": [...], "class_type": ...}}}``.
    """

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"ComfyUI refused the prompt ({status}): {json.dumps(body)[:2000]}")
        self.status = status
        self.body = body


class ComfyUIDied(RuntimeError):
    pass


# ---------------------------------------------------------------- the process
@dataclass
class SessionModels:
    """The fixture models as placed before the session's ComfyUI started."""

    checkpoint: Path  # models/checkpoints/tiny_sd15.safetensors
    lora: Path  # extra/loras/tiny_sd15_lora.safetensors
    unet: Path  # models/diffusion_models/tiny_sd15_unet.safetensors
    vae: Path  # extra/vae/tiny_taesd_vae.safetensors


class ComfyUI:
    """ComfyUI as a subprocess on 127.0.0.1:<free port>, with our package as a custom node."""

    def __init__(
        self,
        env: ComfyEnv,
        base: ComfyBase,
        *,
        with_package: bool = True,
        extra_args: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.env = env
        self.base = base
        self.with_package = with_package
        self.extra_args = list(extra_args or [])
        self.extra_env = dict(extra_env or {})
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._log_file: Any = None
        self.started_at = 0.0
        self.startup_seconds = 0.0
        self.client_id = f"hikaze-tests-{uuid.uuid4().hex[:8]}"
        self.placed: SessionModels | None = None  # set by the session fixture

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [
            self.env.python,
            "main.py",
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--base-directory",
            str(self.base.base),
            "--extra-model-paths-config",
            str(self.base.extra_yaml),
            "--disable-auto-launch",
            "--disable-api-nodes",
            "--database-url",
            f"sqlite:///{self.base.base / 'user' / 'comfyui.db'}",
            "--disable-all-custom-nodes",
        ]
        if self.with_package:
            args += ["--whitelist-custom-nodes", NODE_DIR_NAME]
        return args + self.extra_args

    def start(self, timeout: float = START_TIMEOUT) -> ComfyUI:
        """Start ComfyUI and wait until ``GET /system_stats`` answers 200."""
        self.port = free_port()
        self._log_file = open(self.base.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self._log_file.write(f"\n===== start: {' '.join(self.command())}\n".encode())
        self._log_file.flush()
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=str(self.env.comfyui_dir),
            env=child_env(self.base.data_dir, self.extra_env),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - self.started_at
        return self

    def wait_ready(self, timeout: float) -> None:
        def answers() -> bool:
            self.check_alive()
            try:
                return http("GET", self.url + "/system_stats", timeout=2).status == 200
            except OSError:
                return False

        wait_until(
            answers,
            timeout=timeout,
            interval=0.05,
            message=lambda: f"ComfyUI to answer /system_stats\n{self.log_tail()}",
        )

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ComfyUIDied(f"ComfyUI exited with {self.proc.returncode}\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop ComfyUI: SIGINT (Ctrl+C: ComfyUI exits and atexit handlers run), then
        SIGTERM, then SIGKILL, each after a timeout; returns the exit code."""
        code = None
        if self.proc is not None:
            for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 10.0)):
                if self.proc.poll() is not None:
                    break
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(wait)
                except subprocess.TimeoutExpired:
                    continue
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            code = self.proc.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def __enter__(self) -> ComfyUI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ log
    def log_text(self) -> str:
        if self._log_file is not None:
            self._log_file.flush()
        return self.base.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, chars: int = 6000, line_chars: int = 400) -> str:
        """The end of the log, each line cut to ``line_chars`` (ComfyUI's "clip missing"
        warning for the tiny fixture CLIP is one very long line)."""
        lines = [
            line if len(line) <= line_chars else line[:line_chars] + " [...]"
            for line in self.log_text().splitlines()
        ]
        return "----- ComfyUI log (tail) -----\n" + "\n".join(lines)[-chars:]

    def wait_for_log(self, needle: str, timeout: float = 60.0, start: int = 0) -> str:
        """Wait until the log (from offset ``start``) contains ``needle``; return that line."""

        def found() -> tuple[str, int]:
            text = self.log_text()
            at = text.find(needle, start)
            if at < 0:
                self.check_alive()
            return text, at

        text, at = wait_until(
            found,
            lambda found: found[1] >= 0,
            timeout=timeout,
            interval=0.2,
            message=lambda: f"{needle!r} in the ComfyUI log\n{self.log_tail()}",
        )
        end = text.find("\n", at)
        return text[text.rfind("\n", 0, at) + 1 : end if end >= 0 else None]

    # ------------------------------------------------------------ HTTP
    def get(self, path: str, timeout: float = 30.0) -> HTTPResult:
        return http("GET", self.url + path, timeout=timeout)

    def post(self, path: str, payload: Any = None, timeout: float = 30.0) -> HTTPResult:
        return http("POST", self.url + path, {} if payload is None else payload, timeout=timeout)

    def object_info(self) -> dict[str, Any]:
        result = self.get("/object_info", timeout=60)
        assert result.status == 200, result
        return result.json()

    # ------------------------------------------------------------ prompts
    def submit_prompt(self, workflow: dict[str, Any]) -> HTTPResult:
        """POST /prompt as the frontend does; the raw answer, whatever its status."""
        return self.post("/prompt", {"prompt": workflow, "client_id": self.client_id})

    def queue_prompt(self, workflow: dict[str, Any]) -> str:
        """Queue an API-format workflow; its prompt_id, or ``PromptRefused`` (raw body)."""
        result = self.submit_prompt(workflow)
        body = result.json()
        if result.status != 200:
            raise PromptRefused(result.status, body)
        return body["prompt_id"]

    def wait_for(self, prompt_id: str, timeout: float = PROMPT_TIMEOUT) -> dict[str, Any]:
        """The ``GET /history/{id}`` entry once the prompt has run (successfully or not).

        The entry is ``{"prompt": [...], "outputs": {node_id: ui}, "status": {"status_str":
        "success"|"error", "completed": bool, "messages": [[event, data], ...]}, "meta": ...}``.
        """

        def finished() -> dict[str, Any] | None:
            result = self.get(f"/history/{prompt_id}")
            if result.status == 200:
                entry = (result.json() or {}).get(prompt_id)
                if entry is not None and entry.get("status") is not None:
                    return entry
            self.check_alive()
            return None

        return wait_until(
            finished,
            timeout=timeout,
            interval=0.1,
            message=lambda: f"prompt {prompt_id} to finish\n{self.log_tail()}",
        )

    def run_prompt(self, workflow: dict[str, Any], timeout: float = PROMPT_TIMEOUT) -> dict:
        """Queue, wait, and assert the run succeeded (the error and the log tail if not)."""
        entry = self.wait_for(self.queue_prompt(workflow), timeout)
        status = entry["status"]
        if status.get("status_str") != "success":
            errors = [m for m in status.get("messages", []) if m[0] == "execution_error"]
            raise AssertionError(f"prompt failed: {json.dumps(errors)[:3000]}\n{self.log_tail()}")
        return entry

    def free(self) -> None:
        """Unload models and drop ComfyUI's node cache (as the UI's "free memory" does).

        ComfyUI's prompt worker applies the flags when it next wakes, which ``/free``
        triggers at once, and shows no sign of it: a prompt queued meanwhile still runs
        with the old cache (the flags apply after it). Tests that rely on a fresh cache
        wait for a run whose ``cached_nodes`` say so.
        """
        result = self.post("/free", {"unload_models": True, "free_memory": True})
        assert result.status == 200, result

    # ------------------------------------------------------------ the library
    def api(self, method: str, path: str, payload: Any = None) -> HTTPResult:
        return http(method, f"{self.url}/hikaze/api{path}", payload)

    def scan(self, timeout: float = 120.0, **options: Any) -> dict[str, Any]:
        """Run a library scan (immediate hashing unless told) to its end; the final status."""
        options.setdefault("immediate_hashing", True)
        deadline = time.monotonic() + timeout

        def started() -> bool:
            result = self.api("POST", "/scan", options)
            if result.status not in (202, 409):  # 409: another scan (the start-up one) runs
                raise AssertionError(f"POST /hikaze/api/scan: {result}\n{self.log_tail()}")
            return result.status == 202

        wait_until(
            started,
            timeout=timeout,
            interval=0.2,
            message=lambda: f"the running scan to end, to start ours\n{self.log_tail()}",
        )
        return self.wait_scan_idle(max(1.0, deadline - time.monotonic()))

    def wait_scan_idle(self, timeout: float = 120.0) -> dict[str, Any]:
        def status() -> dict[str, Any]:
            result = self.api("GET", "/scan/status")
            assert result.status == 200, f"{result}\n{self.log_tail()}"
            return result.json()

        return wait_until(
            status,
            lambda status: not status.get("running"),
            timeout=timeout,
            interval=0.2,
            message=lambda: f"the scan to end\n{self.log_tail()}",
        )

    def list_models(self, **query: Any) -> list[dict[str, Any]]:
        query.setdefault("limit", 500)
        result = self.api("GET", "/models?" + urllib.parse.urlencode(query))
        assert result.status == 200, f"{result}\n{self.log_tail()}"
        return result.json()["items"]

    def wait_for_model(
        self,
        path: Path,
        timeout: float = 120.0,
        rescan: bool = False,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Poll ``GET /hikaze/api/models`` until a model at ``path`` is listed; its item."""
        want = os.path.realpath(path)

        def listed() -> dict[str, Any] | None:
            for item in self.list_models(include_missing="true"):
                item_path = item.get("path") or ""
                here = os.path.realpath(item_path) == want and not item.get("missing")
                if here and (predicate is None or predicate(item)):
                    return item
            if rescan:
                self.scan()
            return None

        return wait_until(
            listed,
            timeout=timeout,
            interval=0.3,
            message=lambda: f"{path} listed by /hikaze/api/models\n{self.log_tail()}",
        )


def cached_nodes(entry: dict[str, Any]) -> set[str]:
    """Node ids ComfyUI served from its cache in this run (``execution_cached`` message)."""
    nodes: set[str] = set()
    for event, data in entry["status"]["messages"]:
        if event == "execution_cached":
            nodes.update(str(n) for n in data.get("nodes", []))
    return nodes


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def comfyui_env() -> ComfyEnv:
    env = comfy_env_from()
    if env is None:
        pytest.skip(SKIP_REASON)
    return env


@pytest.fixture(scope="session")
def comfyui_models(comfyui_env: ComfyEnv, tmp_path_factory) -> ModelFixtures:
    out = tmp_path_factory.mktemp("comfyui-models")
    return build_model_fixtures(comfyui_env.comfyui_dir, comfyui_env.python, out)


@pytest.fixture(scope="session")
def comfyui(
    comfyui_env: ComfyEnv, comfyui_models: ModelFixtures, tmp_path_factory
) -> Iterator[ComfyUI]:
    base = ComfyBase(tmp_path_factory.mktemp("comfyui"))
    m = comfyui_models
    placed = SessionModels(
        checkpoint=base.place(m.checkpoint, "checkpoints", m.checkpoint.name),
        lora=base.place(m.lora, "loras", m.lora.name, extra=True),
        unet=base.place(m.unet, "diffusion_models", m.unet.name),
        vae=base.place(m.vae, "vae", m.vae.name, extra=True),
    )
    server = ComfyUI(comfyui_env, base)
    server.placed = placed
    server.start()
    try:
        yield server
    finally:
        server.stop()
