"""Teachers for explanation tuning: strategies, a programmatic world teacher, a local HF model, and an
OpenAI-compatible chat endpoint with retries and a disk cache.

A ``Strategy`` is a system instruction (a small ``*.txt`` file; ``# style: NAME`` header lines are metadata)
that tells a teacher *how* to reason. A teacher answers ``Job``s (an item's user prompt under one strategy)
and returns one text per job, in order. ``WorldTeacher`` writes correct reasoning for the built-in tasks
from each item's ``reasoning`` record, in the strategy's style; ``HFTeacher`` generates greedily with a local
model and its chat template; ``ApiTeacher`` calls ``POST {base_url}/chat/completions`` through
``ChatClient``: threads up to a concurrency limit, retries with exponential backoff (and ``Retry-After``) on
429, 5xx, timeouts, dropped connections and invalid or truncated JSON, and a response cache on disk keyed
by a hash of (model, messages, params), written atomically per response, so a re-run sends no request twice.
The API key is read from the environment variable named in the config; it is never written or logged.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from underdog import UnderdogError
from underdog.files import atomic_write_json
from underdog.lm import load
from underdog.lm.chat import chat_end_marker, format_chat
from underdog.lm.generate import generate
from underdog.lm.load import weights_stamp

STYLES = ("direct", "step_by_step", "recall_generate", "recall_reason_generate", "extract_generate", "explain")
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class TeacherError(UnderdogError):
    """A teacher cannot answer (unreachable endpoint, missing key, retries exhausted, unsupported task)."""


@dataclass(frozen=True)
class Strategy:
    """A reasoning strategy: its name, the system instruction a teacher sees, and the world teacher's style."""

    name: str
    instruction: str
    style: str = "step_by_step"


def read_strategy(path: str | os.PathLike) -> Strategy:
    """A strategy file: optional ``# key: value`` header lines, then the instruction text."""
    path = Path(path)
    meta, body = {}, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not body and line.startswith("#") and ":" in line:
            key, _, value = line[1:].partition(":")
            meta[key.strip()] = value.strip()
        elif line.strip() or body:
            body.append(line)
    instruction = "\n".join(body).strip()
    if not instruction:
        raise TeacherError(f"{path}: the strategy file has no instruction text")
    style = meta.get("style", path.stem if path.stem in STYLES else "step_by_step")
    if style not in STYLES:
        raise TeacherError(f"{path}: unknown style {style!r} (one of {', '.join(STYLES)})")
    return Strategy(path.stem, instruction, style)


@dataclass
class Job:
    """One teacher call: an item's prompt under a strategy. ``key`` identifies it in the caller's records."""

    key: str
    item: dict
    strategy: Strategy


def messages_for(job: Job) -> list[dict]:
    return [{"role": "system", "content": job.strategy.instruction}, {"role": "user", "content": job.item["prompt"]}]


def render(reasoning: dict, answer: str, style: str) -> str:
    """A correct explanation in ``style`` from a reasoning record (``recall``, ``steps``, ``extract``)."""
    recall, steps, extract = (" ".join(reasoning.get(k) or []) for k in ("recall", "steps", "extract"))
    extract = ", ".join(reasoning.get("extract") or [])
    if style == "direct":
        return f"Answer: {answer}."
    if style == "step_by_step":
        return f"Let us think step by step. {steps} Therefore, the answer is {answer}."
    if style == "recall_generate":
        return f"Relevant facts: {recall} Answer: {answer}."
    if style == "recall_reason_generate":
        return f"Relevant facts: {recall} Reasoning: {steps} Answer: {answer}."
    if style == "extract_generate":
        return f"Extracted: {extract}. Answer: {answer}."
    if style == "explain":
        return f"Explanation: we use the facts given. {steps} Therefore, the answer is {answer}."
    raise ValueError(f"unknown style {style!r}")


class Teacher:
    """Base class: ``respond(jobs) -> texts`` (same order); ``stats`` says what it cost."""

    name = "teacher"

    def __init__(self) -> None:
        self.stats: dict[str, int] = {}

    def respond(self, jobs: Sequence[Job], log: Callable[[str], None] = print) -> list[str]:
        raise NotImplementedError

    def key(self) -> dict:
        """What identifies this teacher's answers (part of stage hashes)."""
        return {"teacher": self.name}


class WorldTeacher(Teacher):
    """The programmatic teacher of the built-in tasks: always right, in every strategy's style."""

    name = "world"

    def respond(self, jobs: Sequence[Job], log: Callable[[str], None] = print) -> list[str]:
        out = []
        for job in jobs:
            if "reasoning" not in job.item:
                raise TeacherError(f"the world teacher only answers the built-in tasks; item {job.item.get('id')!r} "
                                   "has no reasoning record (use an HF model or an API teacher)")
            out.append(render(job.item["reasoning"], job.item["answer"], job.strategy.style))
        self.stats["responses"] = self.stats.get("responses", 0) + len(out)
        return out


class HFTeacher(Teacher):
    """A local Hugging Face model (or ``builtin``): greedy generation under the model's chat template."""

    def __init__(self, model: str, device: str = "auto", max_new_tokens: int = 256, batch_size: int = 16) -> None:
        super().__init__()

        self.name, self.lm = f"hf:{model}", load(model, device=device)
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size

    def key(self) -> dict:
        return {"teacher": self.name, "weights": weights_stamp(self.lm.path), "max_new_tokens": self.max_new_tokens}

    def respond(self, jobs: Sequence[Job], log: Callable[[str], None] = print) -> list[str]:
        prompts = [format_chat(self.lm.tokenizer, messages_for(j)) for j in jobs]
        samples = generate(self.lm, prompts, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                           stop=[chat_end_marker(self.lm.tokenizer)], progress=True)
        self.stats["responses"] = self.stats.get("responses", 0) + len(jobs)
        return [s[0].text.strip() for s in samples]


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


@dataclass
class ChatClient:
    """An OpenAI-compatible chat completions client with a disk cache, retries and a thread pool."""

    base_url: str
    model: str
    cache_dir: str | os.PathLike
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    params: dict = field(default_factory=lambda: {"temperature": 0.0, "max_tokens": 256})
    log: Callable[[str], None] = print
    stats: dict = field(default_factory=lambda: {"requests": 0, "retries": 0, "cache_hits": 0, "responses": 0})

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def cache_key(self, messages: Sequence[dict]) -> str:
        blob = json.dumps({"model": self.model, "messages": list(messages), "params": self.params},
                          sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _cache_path(self, key: str) -> Path:
        return Path(self.cache_dir) / key[:2] / f"{key}.json"

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise TeacherError(f"environment variable {self.api_key_env} (the API key) is not set")
        return key

    def complete(self, messages: Sequence[dict]) -> dict:
        """``{"text", "finish_reason", "cached"}`` for one conversation: from the cache, or the endpoint."""
        key = self.cache_key(messages)
        path = self._cache_path(key)
        if path.is_file():
            try:
                cached = json.loads(path.read_text(encoding="utf-8"))["response"]
                self._count("cache_hits")
                return {**cached, "cached": True}
            except (json.JSONDecodeError, KeyError):
                pass  # a damaged entry is fetched again
        body = json.dumps({"model": self.model, "messages": list(messages), **self.params}).encode()
        headers = {"Content-Type": "application/json"}
        api_key = self._api_key()
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        url = self.base_url.rstrip("/") + "/chat/completions"
        for attempt in range(self.max_retries + 1):
            try:
                response = self._post(url, body, headers)
                break
            except _Retry as r:
                if attempt == self.max_retries:
                    raise TeacherError(f"{url}: gave up after {attempt + 1} attempts (last: {r.reason})") from None
                self._count("retries")
                wait = min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * (0.5 + random.random() / 2)
                if r.wait is not None:
                    wait = max(wait, min(r.wait, self.max_backoff_s))
                self.log(f"teacher: {r.reason}; retry {attempt + 1}/{self.max_retries} in {wait:.2f}s")
                time.sleep(wait)
        atomic_write_json(path, {"key": key, "model": self.model, "params": self.params, "messages": list(messages),
                                 "response": response})
        self._count("responses")
        return {**response, "cached": False}

    def _post(self, url: str, body: bytes, headers: dict) -> dict:
        self._count("requests")
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            if e.code in RETRY_STATUS:
                retry_after = e.headers.get("Retry-After") if e.headers else None
                wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
                raise _Retry(f"HTTP {e.code}", wait) from None
            detail = e.read(300).decode("utf-8", "replace").strip().splitlines()
            raise TeacherError(f"{url}: HTTP {e.code} {e.reason}" + (f": {detail[0]}" if detail else "")) from None
        except TimeoutError:
            raise _Retry(f"timeout after {self.timeout_s}s") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", None) or type(e).__name__
            raise _Retry(f"connection error ({reason})") from None
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as e:
            raise _Retry(f"invalid response body ({type(e).__name__})") from None
        return {"text": text, "finish_reason": choice.get("finish_reason"), "usage": data.get("usage")}

    def complete_many(self, conversations: Sequence[Sequence[dict]]) -> list[dict]:
        """``complete`` for every conversation on ``concurrency`` threads; results in input order."""
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(self.complete, conversations))


class ApiTeacher(Teacher):
    """A teacher behind an OpenAI-compatible ``/chat/completions`` endpoint (see ``ChatClient``)."""

    def __init__(self, client: ChatClient) -> None:
        super().__init__()
        self.client, self.name = client, f"api:{client.model}"
        self.stats = client.stats

    def key(self) -> dict:
        return {"teacher": self.name, "base_url": self.client.base_url, "params": self.client.params}

    def respond(self, jobs: Sequence[Job], log: Callable[[str], None] = print) -> list[str]:
        results = self.client.complete_many([messages_for(j) for j in jobs])
        fresh = sum(not r["cached"] for r in results)
        log(f"teacher {self.name}: {len(results)} responses ({fresh} new, {len(results) - fresh} from the cache)")
        return [r["text"].strip() for r in results]
