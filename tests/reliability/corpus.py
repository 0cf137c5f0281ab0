"""The malformed-input corpus: one ``Case`` per bad input, across every CLI entry point.

A case builds its files under a fresh folder and returns the ``underdog`` argv that feeds them; the test runs
it (``underdog.cli.main``) and asserts exit code 2, one line on stderr, no traceback, and that nothing under the
folder changed (so nothing was written to ``--out``). ``PENDING`` names the cases that still fail only because
a CLI call listed in the issue's report is not wired yet; they are strict xfails, so wiring them flags them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GOOD_CHOICE = {"id": "q1", "context": "the cat sat on the", "choices": ["mat", "tree"], "answer": 0}
GOOD_QA = {"id": "a1", "question": "what sat on the mat?", "answers": ["the cat"]}


@dataclass
class Ctx:
    root: Path  # the case's folder: inputs and outputs live here
    model: str  # a tiny model directory (256-token window)

    @property
    def out(self) -> str:
        return str(self.root / "out")

    def write(self, name: str, content: bytes | str | list | dict) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, list):  # JSONL rows
            content = "".join(json.dumps(r) + "\n" for r in content)
        elif isinstance(content, dict):
            content = json.dumps(content)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)

    def file_out(self) -> str:
        return self.write("out", "I am a file, not a folder\n")

    def under_file(self) -> str:
        self.write("blocker", "a file\n")
        return str(self.root / "blocker" / "out")

    def unwritable(self) -> str:
        if os.geteuid() == 0:  # root writes anywhere chmod allows nothing; /proc/sys is read-only even to root
            return "/proc/sys/underdog-out"
        ro = self.root / "ro"
        ro.mkdir(exist_ok=True)
        ro.chmod(0o500)
        return str(ro / "out")


@dataclass
class Case:
    id: str
    build: Callable[[Ctx], list[str]]


def _score(data: bytes | str | list, *extra: str) -> Callable[[Ctx], list[str]]:
    return lambda c: ["score", "--model", c.model, "--data", c.write("data.jsonl", data), "--out", c.out, *extra]


def _score_out(where: Callable[[Ctx], str]) -> Callable[[Ctx], list[str]]:
    return lambda c: ["score", "--model", c.model, "--data", c.write("data.jsonl", [GOOD_CHOICE]), "--out", where(c)]


def _row(**change) -> dict:
    return {**GOOD_CHOICE, **change}


def _without(key: str) -> dict:
    return {k: v for k, v in GOOD_CHOICE.items() if k != key}


def _model(files: dict[str, bytes | str]) -> Callable[[Ctx], list[str]]:
    def build(c: Ctx) -> list[str]:
        (c.root / "model").mkdir()
        for name, content in files.items():
            c.write(f"model/{name}", content)
        return ["score", "--model", str(c.root / "model"), "--data", c.write("data.jsonl", [GOOD_CHOICE]),
                "--out", c.out]
    return build


def _world(*args: str, out: Callable[[Ctx], str] | None = None) -> Callable[[Ctx], list[str]]:
    return lambda c: ["world", "--out", out(c) if out else c.out, *args]


SQUAD = {"data": [{"paragraphs": [{"context": "The cat sat.", "qas": [
    {"id": "s1", "question": "Who sat?", "answers": [{"text": "The cat"}]}]}]}]}


def _trivia(aliases) -> dict:
    return {"Data": [{"QuestionId": "t1", "Question": "Who?", "Answer": {"Value": "cat", "Aliases": aliases}}]}


def _convert(fmt: str, src: bytes | str | dict, out: Callable[[Ctx], str] | None = None) -> Callable[[Ctx], list[str]]:
    return lambda c: ["data", "convert", "--format", fmt, c.write("src.json", src),
                      out(c) if out else str(c.root / "out.jsonl")]


def _aspire(train: bytes | str | list, test: bytes | str | list | None = None, *extra: str,
            out: Callable[[Ctx], str] | None = None) -> Callable[[Ctx], list[str]]:
    return lambda c: ["aspire", "--model", c.model, "--train", c.write("train.jsonl", train),
                      "--test", c.write("test.jsonl", test if test is not None else [GOOD_QA]),
                      "--out", out(c) if out else c.out, "--compare-model", "", *extra]


def _world_dir(docs: bytes | str | list, questions: bytes | str | list) -> Callable[[Ctx], str]:
    def build(c: Ctx) -> str:
        c.write("w/documents.jsonl", docs)
        c.write("w/questions.jsonl", questions)
        return str(c.root / "w")
    return build


DOC = {"id": "d1", "text": "Blick is bigger than fran."}
QUESTION = {"id": "w1", "split": "forward", "question": "Blick is", "choices": ["bigger", "smaller"], "answer": 0}


def _general(*extra: str, world: Callable[[Ctx], str] | None = None,
             out: Callable[[Ctx], str] | None = None) -> Callable[[Ctx], list[str]]:
    def build(c: Ctx) -> list[str]:
        w = (world or _world_dir([DOC], [QUESTION]))(c)
        return ["generalization", "--model", c.model, "--world", w, "--methods", "none",
                "--out", out(c) if out else c.out, *extra]
    return build


def _explain(tasks: bytes | str | list, *extra: str, out: Callable[[Ctx], str] | None = None):
    return lambda c: ["explain", "--teacher", "world", "--student", c.model, "--tasks", c.write("tasks.jsonl", tasks),
                      "--out", out(c) if out else c.out, *extra]


def _run(recipe: bytes | str) -> Callable[[Ctx], list[str]]:
    return lambda c: ["run", c.write("recipe.yaml", recipe)]


def _compare(build_dirs: Callable[[Ctx], tuple[str, str]]) -> Callable[[Ctx], list[str]]:
    def build(c: Ctx) -> list[str]:
        a, b = build_dirs(c)
        return ["compare", "--a", a, "--b", b]
    return build


def _broken_symlink(c: Ctx) -> str:
    (c.root / "link").symlink_to(c.root / "nowhere" / "deeper")
    return str(c.root / "link")


def _symlink_loop(c: Ctx) -> str:
    (c.root / "loop").symlink_to(c.root / "loop")
    return str(c.root / "loop")


def _fifo(c: Ctx) -> str:
    os.mkfifo(c.root / "fifo")
    return str(c.root / "fifo")


def _empty_dirs(c: Ctx) -> tuple[str, str]:
    (c.root / "a").mkdir()
    (c.root / "b").mkdir()
    return str(c.root / "a"), str(c.root / "b")


def _bad_results(c: Ctx) -> tuple[str, str]:
    c.write("a/results.json", b"{not json")
    c.write("b/results.json", b"\xff\xfe\x00garbage")
    return str(c.root / "a"), str(c.root / "b")


LONG_LINE = b'{"id": "x", "context": "' + b"word " * 400_000 + b'", "choices": ["a", "b"], "answer": 0}\n'

CASES: list[Case] = [
    # ---- score: the data file -------------------------------------------------------------------------------
    Case("score-non-utf8", _score(b'{"id": "a", "context": "caf\xe9", "choices": ["x", "y"], "answer": 0}\n')),
    Case("score-latin1-later-line", _score(json.dumps(GOOD_CHOICE).encode() + b"\n" + b'{"id": "b\xff"}\n')),
    Case("score-binary-garbage", _score(bytes(range(256)) * 64)),
    Case("score-binary-no-nul", _score(bytes(range(128, 256)) * 64)),
    Case("score-utf16", _score(json.dumps(GOOD_CHOICE).encode("utf-16"))),
    Case("score-empty-file", _score(b"")),
    Case("score-blank-lines", _score(b"\n   \n\t\n")),
    Case("score-missing-file", lambda c: ["score", "--data", str(c.root / "nope.jsonl"), "--out", c.out]),
    Case("score-data-is-folder", lambda c: ["score", "--data", str(c.root), "--out", c.out]),
    Case("score-data-is-device", lambda c: ["score", "--data", "/dev/zero", "--out", c.out]),
    Case("score-cr-only-line-ends", _score((json.dumps(GOOD_CHOICE) + "\r") * 3)),
    Case("score-symlink-loop", lambda c: ["score", "--data", _symlink_loop(c), "--out", c.out]),
    Case("score-data-is-fifo", lambda c: ["score", "--data", _fifo(c), "--out", c.out]),
    Case("score-truncated-json", _score('{"id": "a", "context": "c", "choices": ["x", "y"]')),
    Case("score-json-array", _score("[1, 2, 3]\n")),
    Case("score-json-string", _score('"just a string"\n')),
    Case("score-missing-choices", _score([_without("choices")])),
    Case("score-choices-string", _score([_row(choices="mat tree")])),
    Case("score-answer-bool", _score([_row(answer=True)])),
    Case("score-answer-out-of-range", _score([_row(answer=5)])),
    Case("score-answer-negative", _score([_row(answer=-1)])),
    Case("score-answer-float", _score([_row(answer=1.5)])),
    Case("score-answer-string", _score([_row(answer="0")])),
    Case("score-one-choice", _score([_row(choices=["mat"])])),
    Case("score-empty-choice", _score([_row(choices=["mat", ""])])),
    Case("score-choice-number", _score([_row(choices=["mat", 3])])),
    Case("score-duplicate-ids", _score([GOOD_CHOICE, _row(context="a dog")])),
    Case("score-duplicate-int-and-str-id", _score([_row(id=7), _row(id="7")])),
    Case("score-missing-context", _score([_without("context")])),
    Case("score-context-number", _score([_row(context=12)])),
    Case("score-nan", _score('{"id": "a", "context": "c", "choices": ["x", "y"], "answer": NaN}\n')),
    Case("score-deep-nesting", _score(b"[" * 200_000 + b"]" * 200_000 + b"\n")),
    Case("score-huge-integer", _score(b'{"id": "a", "context": "c", "choices": ["x", "y"], "answer": '
                                      + b"9" * 10_000 + b"}\n")),
    Case("score-line-over-limit", _score(LONG_LINE)),
    Case("score-choice-over-char-limit", _score([_row(choices=["mat", "tree " * 2000])])),
    Case("score-choice-over-window", _score([_row(choices=["mat", "the cat " * 300])])),
    # ---- score: flags and the model ------------------------------------------------------------------------
    Case("score-unknown-device", _score([GOOD_CHOICE], "--device", "tpu")),
    Case("score-cuda-index", _score([GOOD_CHOICE], "--device", "cuda:99")),
    Case("score-unknown-dtype", _score([GOOD_CHOICE], "--dtype", "float8")),
    Case("score-batch-size-zero", _score([GOOD_CHOICE], "--batch-size", "0")),
    Case("score-batch-size-negative", _score([GOOD_CHOICE], "--batch-size", "-4")),
    Case("score-model-missing", lambda c: ["score", "--model", str(c.root / "nope"), "--data",
                                           c.write("data.jsonl", [GOOD_CHOICE]), "--out", c.out]),
    Case("score-model-is-file", lambda c: ["score", "--model", c.write("m.bin", b"\x00" * 10), "--data",
                                           c.write("data.jsonl", [GOOD_CHOICE]), "--out", c.out]),
    Case("score-model-no-config", _model({"tokenizer.json": "{}"})),
    Case("score-model-bad-config", _model({"config.json": "{not json"})),
    Case("score-model-no-weights", _model({"config.json": '{"model_type": "llama"}', "tokenizer.json": "{}"})),
    Case("score-model-garbage-weights", _model({"config.json": '{"model_type": "llama"}', "tokenizer.json": "{}",
                                                "model.safetensors": b"\x00\x01garbage" * 100})),
    # ---- score: the output folder --------------------------------------------------------------------------
    Case("score-out-is-file", _score_out(Ctx.file_out)),
    Case("score-out-under-file", _score_out(Ctx.under_file)),
    Case("score-out-unwritable", _score_out(Ctx.unwritable)),
    Case("score-out-empty", _score_out(lambda c: "")),
    Case("score-out-broken-symlink", _score_out(_broken_symlink)),
    # ---- world ---------------------------------------------------------------------------------------------
    Case("world-negative-size", _world("--size", "n_families=-1")),
    Case("world-fraction-over-one", _world("--size", "p_more=1.5")),
    Case("world-one-choice", _world("--size", "n_choices=1")),
    Case("world-size-not-number", _world("--size", "chain_length=abc")),
    Case("world-unknown-size", _world("--size", "n_planets=3")),
    Case("world-doc-min-over-max", _world("--size", "doc_min=20")),
    Case("world-size-absurd", _world("--size", "n_families=1000000000")),
    Case("world-out-is-file", _world(out=Ctx.file_out)),
    Case("world-out-under-file", _world(out=Ctx.under_file)),
    Case("world-out-unwritable", _world(out=Ctx.unwritable)),
    # ---- data convert --------------------------------------------------------------------------------------
    Case("convert-squad-non-utf8", _convert("squad", json.dumps(SQUAD).encode().replace(b"cat", b"c\xe0t"))),
    Case("convert-squad-binary", _convert("squad", bytes(range(256)) * 16)),
    Case("convert-squad-empty", _convert("squad", b"")),
    Case("convert-squad-invalid-json", _convert("squad", '{"data": [')),
    Case("convert-squad-deep-nesting", _convert("squad", b"[" * 200_000 + b"]" * 200_000)),
    Case("convert-squad-duplicate-ids", _convert("squad", {"data": [SQUAD["data"][0], SQUAD["data"][0]]})),
    Case("convert-squad-no-questions", _convert("squad", {"data": []})),
    Case("convert-triviaqa-aliases-string", _convert("triviaqa", _trivia("the cat"))),
    Case("convert-triviaqa-aliases-numbers", _convert("triviaqa", _trivia(["cat", 3]))),
    Case("convert-coqa-mismatch", _convert("coqa", {"data": [{"id": "c", "story": "s", "questions": [
        {"input_text": "q?"}], "answers": []}]})),
    Case("convert-missing-input", lambda c: ["data", "convert", "--format", "squad", str(c.root / "nope.json"),
                                             str(c.root / "out.jsonl")]),
    Case("convert-out-is-folder", _convert("squad", SQUAD, out=lambda c: str(c.root))),
    Case("convert-out-under-file", _convert("squad", SQUAD, out=Ctx.under_file)),
    Case("convert-out-unwritable", _convert("squad", SQUAD, out=Ctx.unwritable)),
    # ---- aspire --------------------------------------------------------------------------------------------
    Case("aspire-empty-train", _aspire(b"")),
    Case("aspire-test-non-utf8", _aspire([GOOD_QA], b'{"id": "a", "question": "\xff?", "answers": ["x"]}\n')),
    Case("aspire-answers-string", _aspire([{**GOOD_QA, "answers": "the cat"}])),
    Case("aspire-answers-empty", _aspire([{**GOOD_QA, "answers": []}])),
    Case("aspire-duplicate-ids", _aspire([GOOD_QA, GOOD_QA])),
    Case("aspire-binary-train", _aspire(bytes(range(256)) * 8)),
    Case("aspire-negative-lr", _aspire([GOOD_QA], None, "selfeval.lr=-1")),
    Case("aspire-zero-epochs", _aspire([GOOD_QA], None, "selfeval.epochs=0")),
    Case("aspire-unknown-device", _aspire([GOOD_QA], None, "--device", "tpu")),
    Case("aspire-out-is-file", _aspire([GOOD_QA], out=Ctx.file_out)),
    Case("aspire-out-unwritable", _aspire([GOOD_QA], out=Ctx.unwritable)),
    # ---- generalization ------------------------------------------------------------------------------------
    Case("general-empty-questions", _general(world=_world_dir([DOC], b""))),
    Case("general-non-utf8-documents", _general(world=_world_dir(b'{"id": "d1", "text": "\xfe"}\n', [QUESTION]))),
    Case("general-duplicate-questions", _general(world=_world_dir([DOC], [QUESTION, QUESTION]))),
    Case("general-missing-world", _general(world=lambda c: str(c.root / "nowhere"))),
    Case("general-negative-lr", _general("train.lr=-0.1")),
    Case("general-zero-epochs", _general("train.epochs=0")),
    Case("general-negative-max-per-split", _general("--max-per-split", "-3")),
    Case("general-unknown-method", _general("--methods", "bogus")),
    Case("general-unknown-device", _general("--device", "tpu")),
    Case("general-out-is-file", _general(out=Ctx.file_out)),
    Case("general-out-under-file", _general(out=Ctx.under_file)),
    # ---- explain -------------------------------------------------------------------------------------------
    Case("explain-empty-tasks", _explain(b"")),
    Case("explain-non-utf8-tasks", _explain(b'{"id": "t", "prompt": "\xff", "answer": "x"}\n')),
    Case("explain-seed-not-number", _explain([{"id": "t", "prompt": "p", "answer": "a"}], "--seed", "abc")),
    Case("explain-out-under-file", _explain([{"id": "t", "prompt": "p", "answer": "a"}], out=Ctx.under_file)),
    # ---- run / pretrain: recipes ---------------------------------------------------------------------------
    Case("run-recipe-non-utf8", _run(b"method: aspire\nseed: \xff\n")),
    Case("run-recipe-binary", _run(bytes(range(256)))),
    Case("run-recipe-list", _run("- a\n- b\n")),
    Case("run-recipe-no-method", _run("seed: 3\n")),
    Case("run-recipe-unknown-key", _run("method: aspire\ntask: world-qa\nbogus: 1\n")),
    Case("run-recipe-invalid-yaml", _run("method: aspire\nseed: [1, 2\n")),
    Case("pretrain-missing-recipe", lambda c: ["pretrain", str(c.root / "nope.yaml")]),
    Case("pretrain-negative-tokens", lambda c: ["pretrain", "tokens=-5", f"out={c.out}"]),
    # ---- probe and compare ---------------------------------------------------------------------------------
    Case("probe-model-missing", lambda c: ["probe", "--model", str(c.root / "nope")]),
    Case("probe-bad-lines", lambda c: ["probe", "--model", c.model, "--lines", "0"]),
    Case("compare-empty-runs", _compare(_empty_dirs)),
    Case("compare-corrupt-results", _compare(_bad_results)),
]

# cases that fail only because a CLI call is not wired yet, with that call (none today)
PENDING: dict[str, str] = {}
