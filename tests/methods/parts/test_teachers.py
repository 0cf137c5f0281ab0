"""The API teacher against a fault-injecting OpenAI-style server on 127.0.0.1: 429s, 5xx, timeouts, dropped
connections, invalid and truncated JSON, then valid completions. Every item comes back once, in order; a
re-run sends zero requests (the disk cache); the API key reaches the server but never the disk or the log."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from underdog.methods.parts.teachers import (
    ChatClient,
    Job,
    Strategy,
    TeacherError,
    WorldTeacher,
    read_strategy,
    render,
)

KEY = "sk-test-0123456789-secret"
FAULTS = ["429", "500", "timeout", "invalid_json", "truncated_body", "disconnect", "503", "truncated_json", "502",
          "timeout"]


class FaultServer:
    """OpenAI-style /chat/completions; the first requests get ``faults`` (one each), later ones a valid reply
    from ``reply(messages)``. Serves at most ``max_requests`` (then 503s), and counts everything."""

    def __init__(self, reply, faults=(), sleep_s: float = 0.6, max_requests: int = 200) -> None:
        self.reply, self.faults, self.sleep_s, self.max_requests = reply, list(faults), sleep_s, max_requests
        self.requests, self.auth, self.lock = 0, set(), threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body: bytes, length: int | None = None, headers=()) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if length is None else length))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests += 1
                    server.auth.add(self.headers.get("Authorization"))
                    fault = server.faults.pop(0) if server.faults else None
                    over = server.requests > server.max_requests
                text = server.reply(body["messages"])
                ok = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()
                try:
                    if over or fault in ("500", "502", "503"):
                        self._send(int(fault or 503), b'{"error": "server error"}')
                    elif fault == "429":
                        self._send(429, b'{"error": "rate limited"}', headers=[("Retry-After", "0")])
                    elif fault == "timeout":
                        time.sleep(server.sleep_s)
                        self._send(200, ok)
                    elif fault == "invalid_json":
                        self._send(200, b"<html>upstream error</html>")
                    elif fault == "truncated_json":
                        self._send(200, ok[: len(ok) // 2])
                    elif fault == "truncated_body":  # promise more bytes than are sent, then hang up
                        self._send(200, ok[: len(ok) // 2], length=len(ok))
                        self.close_connection = True
                    elif fault == "disconnect":
                        self.close_connection = True
                    else:
                        self._send(200, ok)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def echo(messages) -> str:
    return f"Let us think step by step. Therefore, the answer is {messages[-1]['content'].upper()}."


def client(url: str, cache, log) -> ChatClient:
    return ChatClient(url, "teacher-model", cache, api_key_env="UNDERDOG_TEST_KEY", concurrency=4, timeout_s=0.25,
                      max_retries=8, backoff_s=0.01, max_backoff_s=0.05, log=log)


def test_faults_are_retried_nothing_lost_and_rerun_is_free(tmp_path, monkeypatch):
    monkeypatch.setenv("UNDERDOG_TEST_KEY", KEY)
    logged: list[str] = []
    conversations = [[{"role": "system", "content": "be careful"}, {"role": "user", "content": f"item {i}"}]
                     for i in range(24)]
    with FaultServer(echo, FAULTS) as server:
        results = client(server.url, tmp_path / "cache", logged.append).complete_many(conversations)
        assert [r["text"] for r in results] == [echo(c) for c in conversations]  # none lost, duplicated, swapped
        assert server.requests == len(conversations) + len(FAULTS)  # each fault cost exactly one retry
        assert server.auth == {f"Bearer {KEY}"}
        again = client(server.url, tmp_path / "cache", logged.append)
        assert [r["text"] for r in again.complete_many(conversations)] == [r["text"] for r in results]
        assert server.requests == len(conversations) + len(FAULTS)  # the re-run sent nothing
        assert again.stats["cache_hits"] == len(conversations) and again.stats["requests"] == 0
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == len(conversations)
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    assert all(KEY not in f.read_text() for f in files)
    assert logged and all(KEY not in line for line in logged)
    assert any("HTTP 429" in line for line in logged) and any("timeout" in line for line in logged)


def test_client_errors_are_not_retried_and_missing_key_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("UNDERDOG_TEST_KEY", KEY)

    with FaultServer(echo) as server:
        server.max_requests = 0  # every request answered 503: retries run out
        c = client(server.url, tmp_path / "c1", lambda s: None)
        c.max_retries = 2
        with pytest.raises(TeacherError, match="gave up after 3 attempts"):
            c.complete([{"role": "user", "content": "x"}])
        assert server.requests == 3
    monkeypatch.delenv("UNDERDOG_TEST_KEY")
    with pytest.raises(TeacherError, match="UNDERDOG_TEST_KEY"):
        client("http://127.0.0.1:9/v1", tmp_path / "c2", print).complete([{"role": "user", "content": "x"}])


def test_api_teacher_stage_of_a_run_survives_faults_and_reruns_for_free(tmp_path, monkeypatch, llama_dir):
    from underdog.methods.explain import ExplainRecipe, load_items, run_explain

    monkeypatch.setenv("UNDERDOG_TEST_KEY", KEY)
    recipe = ExplainRecipe(teacher="api", student=str(llama_dir), out=str(tmp_path / "run"), device="cpu",
                           sizes={"train": 2, "dev": 0, "test": 2}, categories=["family_2hop", "arithmetic_1step"],
                           select_by="fixed", fixed={"family_2hop": "step_by_step", "arithmetic_1step": "direct"},
                           variants=["teacher"])
    recipe.api.base_url, recipe.api.key_env, recipe.api.timeout_s = "http://placeholder/v1", "UNDERDOG_TEST_KEY", 0.25
    recipe.api.backoff_s, recipe.api.max_backoff_s, recipe.api.max_retries = 0.01, 0.05, 8
    answers = {it["prompt"]: it["answer"] for it in load_items(recipe)}
    with FaultServer(lambda m: f"Therefore, the answer is {answers[m[-1]['content']]}.", FAULTS) as server:
        recipe.api.base_url = server.url
        results = run_explain(recipe, log=lambda s: None)
        records = json.loads((tmp_path / "run/stages/teacher/result.json").read_text())["result"]["records"]
        test_ids = [it["id"] for it in load_items(recipe) if it["split"] == "test"]
        assert sorted(r["id"] for r in records) == sorted(test_ids)  # nothing lost or duplicated
        assert all(r["correct"] for r in records)
        assert results["metrics"]["teacher/multi_step/accuracy"]["value"] == 1.0
        first = server.requests
        assert first == len(test_ids) + len(FAULTS)
        run_explain(recipe, log=lambda s: None)  # finished stages are skipped
        (tmp_path / "run/stages/teacher/stage.json").unlink()  # recomputed: every response from the disk cache
        run_explain(recipe, log=lambda s: None)
        assert server.requests == first
    assert not any(KEY in p.read_text(errors="ignore") for p in (tmp_path / "run").rglob("*") if p.is_file())


def test_strategy_files_and_world_teacher_styles(tmp_path):
    (tmp_path / "mine.txt").write_text("# style: recall_generate\nRecall, then answer.\n")
    s = read_strategy(tmp_path / "mine.txt")
    assert (s.name, s.style, s.instruction) == ("mine", "recall_generate", "Recall, then answer.")
    item = {"id": "a", "prompt": "Facts: ...", "answer": "Dax",
            "reasoning": {"recall": ["Mil is the parent of Ro."], "steps": ["Ro is the child of Mil."],
                          "extract": ["Ro", "Mil"]}}
    text = WorldTeacher().respond([Job("a", item, s)])[0]
    assert text == render(item["reasoning"], "Dax", "recall_generate") == \
        "Relevant facts: Mil is the parent of Ro. Answer: Dax."
    with pytest.raises(TeacherError, match="only answers the built-in tasks"):
        WorldTeacher().respond([Job("b", {"id": "b", "prompt": "x", "answer": "y"}, Strategy("d", "x", "direct"))])
