"""Open-ended question answering: the JSONL schema, the prompt, converters, and the world-QA task.

A QA file is JSONL, one ``{"id", "question", "answers": [...], "context"?}`` a line (``read_qa`` checks it and
names file, line and field on error). The prompt is ``context + "\\n\\n" + "Question: " + question +
" Answer:"`` (no context: just the question part) and a correct completion is ``" " + answer + "."``: the
``icl_qa`` format the built-in model was pretrained on. Converters read local SQuAD v1.1 JSON, TriviaQA rc JSON
(closed book: question and answer aliases) and CoQA JSON (story plus the conversation so far as context) into
that schema; a malformed record raises ``DataError`` naming the file and the record's path (a source that is
binary or not UTF-8 names the line and byte offset; TriviaQA ``Aliases`` must be a list of strings, not one
string whose characters would become answers). ``convert`` checks the output path before reading anything.
``read_qa`` streams the file (``underdog.io``: bounded line length, UTF-8, no empty file) and refuses duplicate ids
and answers longer than ``MAX_FIELD_CHARS``. ``world_qa(seed)``
builds train/dev/test splits of open-book reading comprehension from a fresh evaluation world: each item's
context holds its question's support documents plus one or two other documents (seeded), its question is the
world's cloze prefix followed by "...?", and its answer the correct choice, over all six generalization splits.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from underdog.files import check_output_file
from underdog.io import (
    MAX_FIELD_CHARS,
    DataError,
    check,
    check_unique_ids,
    decode_line,
    open_data,
    parse_json,
    read_jsonl,
    write_jsonl,
)
from underdog.world import make_world, open_question, support_documents

QA_FIELDS = {"id": str, "question": str, "answers": list}
QA_OPTIONAL = {"context": str, "split": str}
FORMATS = ("squad", "triviaqa", "coqa")


def qa_prompt(item: dict) -> str:
    """The prompt an answer continues: optional context, a blank line, ``Question: ... Answer:``."""
    question = f"Question: {item['question']} Answer:"
    context = (item.get("context") or "").strip()
    return f"{context}\n\n{question}" if context else question


def qa_completion(answer: str) -> str:
    return f" {answer.strip()}."


def read_qa(path: str | os.PathLike, max_line_bytes: int | None = None) -> list[dict]:
    """Read and check a QA JSONL file; errors name the file, line and field."""
    rows = read_jsonl(path, required=QA_FIELDS, optional=QA_OPTIONAL, max_line_bytes=max_line_bytes)
    for r in rows:
        check(bool(r["question"].strip()), path, r, "field 'question' is empty")
        check(len(r["answers"]) > 0, path, r, "field 'answers' is empty (give at least one reference answer)")
        check(all(isinstance(a, str) and a.strip() for a in r["answers"]), path, r,
              "field 'answers' must hold non-empty strings")
        check(all(len(a) <= MAX_FIELD_CHARS for a in r["answers"]), path, r,
              f"field 'answers': an answer over the limit of {MAX_FIELD_CHARS} characters")
    check_unique_ids(rows, path)
    for r in rows:
        r.pop("_line", None)
    return rows


def _load_json(path: str | os.PathLike) -> Any:
    """A source JSON file; binary or non-UTF-8 bytes are errors naming the line and the byte offset."""
    path = Path(path)
    with open_data(path, "JSON file") as f:
        try:
            raw = f.read()
        except OSError as e:
            raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = raw[start:].decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:  # find the line of the bad byte the way JSONL reading reports it
        offset = 0
        for lineno, line in enumerate(raw.splitlines(keepends=True), start=1):
            decode_line(line[start:] if lineno == 1 else line, path, lineno, offset + (start if lineno == 1 else 0))
            offset += len(line)
    del raw
    if not text.strip():
        raise DataError(f"{path}: no data (the file is empty)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
    except (RecursionError, ValueError):
        return parse_json(text, str(path))  # the same one-line error as JSONL lines give


def _get(obj: Any, key: str, types: type | tuple, path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"{path}: {where}: missing field '{key}'")
    if not isinstance(obj[key], types):
        raise DataError(f"{path}: {where}: field '{key}' has the wrong type ({type(obj[key]).__name__})")
    return obj[key]


def _answers(texts: Sequence[Any]) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in texts if isinstance(t, str) and t.strip()))


def convert_squad(path: str | os.PathLike) -> list[dict]:
    """SQuAD v1.1 JSON (``data[].paragraphs[].qas[]``) -> QA rows with the paragraph as context."""
    path = Path(path)
    rows = []
    for i, article in enumerate(_get(_load_json(path), "data", list, path, "top level")):
        for j, para in enumerate(_get(article, "paragraphs", list, path, f"data[{i}]")):
            where = f"data[{i}].paragraphs[{j}]"
            context = _get(para, "context", str, path, where)
            for k, qa in enumerate(_get(para, "qas", list, path, where)):
                w = f"{where}.qas[{k}]"
                answers = _answers(_get(a, "text", str, path, f"{w}.answers[{n}]")
                                   for n, a in enumerate(_get(qa, "answers", list, path, w)))
                if not answers:
                    raise DataError(f"{path}: {w}: no answer text")
                rows.append({"id": str(_get(qa, "id", (str, int), path, w)),
                             "question": _get(qa, "question", str, path, w).strip(),
                             "answers": answers, "context": context})
    return rows


def convert_triviaqa(path: str | os.PathLike) -> list[dict]:
    """TriviaQA rc JSON (``Data[]`` with ``Question``, ``QuestionId``, ``Answer.Value``/``Aliases``) -> QA rows
    without context (closed book, as in ASPIRE)."""
    path = Path(path)
    rows = []
    for i, item in enumerate(_get(_load_json(path), "Data", list, path, "top level")):
        w = f"Data[{i}]"
        answer = _get(item, "Answer", dict, path, w)
        value = _get(answer, "Value", str, path, f"{w}.Answer")
        aliases = answer.get("Aliases", [])
        aliases = [] if aliases is None else aliases
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            got = type(aliases).__name__ if not isinstance(aliases, list) else "a list holding a non-string"
            raise DataError(f"{path}: {w}.Answer: field 'Aliases' should be a list of strings, got {got}")
        rows.append({"id": str(_get(item, "QuestionId", (str, int), path, w)),
                     "question": _get(item, "Question", str, path, w).strip(),
                     "answers": _answers([value, *aliases])})
    return rows


def convert_coqa(path: str | os.PathLike) -> list[dict]:
    """CoQA JSON (``data[]`` with ``story``, ``questions[]``, ``answers[]``, ``additional_answers``) -> one row
    per turn; the context is the story followed by the earlier turns as "Question: q Answer: a." lines."""
    path = Path(path)
    rows = []
    for i, conv in enumerate(_get(_load_json(path), "data", list, path, "top level")):
        w = f"data[{i}]"
        story, cid = _get(conv, "story", str, path, w), str(_get(conv, "id", (str, int), path, w))
        questions = _get(conv, "questions", list, path, w)
        answers = _get(conv, "answers", list, path, w)
        if len(questions) != len(answers):
            raise DataError(f"{path}: {w}: {len(questions)} questions but {len(answers)} answers")
        extra = [a for a in (conv.get("additional_answers") or {}).values() if isinstance(a, list)]
        history: list[str] = []
        for t, (q, a) in enumerate(zip(questions, answers)):
            question = _get(q, "input_text", str, path, f"{w}.questions[{t}]").strip()
            answer = _get(a, "input_text", str, path, f"{w}.answers[{t}]").strip()
            refs = _answers([answer, *(e[t].get("input_text") for e in extra if t < len(e) and isinstance(e[t], dict))])
            turn = q.get("turn_id", t + 1)
            if refs:
                context = story.strip() + ("\n\n" + "\n".join(history) if history else "")
                rows.append({"id": f"{cid}_{turn}", "question": question, "answers": refs, "context": context})
            history.append(f"Question: {question} Answer: {answer.rstrip('.')}.")
    return rows


CONVERTERS = {"squad": convert_squad, "triviaqa": convert_triviaqa, "coqa": convert_coqa}


def convert(fmt: str, src: str | os.PathLike, out: str | os.PathLike) -> int:
    """Convert ``src`` (format ``fmt``) to QA JSONL at ``out``; returns the number of rows written."""

    if fmt not in CONVERTERS:
        raise DataError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    check_output_file(out)
    rows = CONVERTERS[fmt](src)
    if not rows:
        raise DataError(f"{src}: no questions found")
    seen: set[str] = set()
    for r in rows:
        if r["id"] in seen:
            raise DataError(f"{src}: duplicate question id {r['id']!r}")
        seen.add(r["id"])
    write_jsonl(out, rows)
    return len(rows)


def world_qa(seed: int, n_train: int = 400, n_dev: int = 200, n_test: int = 600,
             extra_docs: tuple[int, int] = (1, 2), options: bool = False,
             **sizes: int | float) -> dict[str, list[dict]]:
    """Open-book QA splits from the evaluation world of ``seed``: ``{"train", "dev", "test"}`` lists of QA rows
    (with the world split in ``split``). Questions are shuffled once (seeded) and cut into the three parts.
    ``options`` lists the world's answer choices in the question ("... ...? Options: a; b; c; d."), the other
    pretraining format, which makes the task easier for a weak reader."""

    world = make_world(seed, pool="eval", **sizes)
    rng = random.Random(f"underdog-world-qa-{seed}")
    docs = {d["id"]: d for d in world.documents}
    items = []
    for q in world.questions:
        ids = support_documents(world, q)
        others = sorted(set(docs) - set(ids))
        ids = ids + rng.sample(others, min(len(others), rng.randint(*extra_docs)))
        rng.shuffle(ids)
        items.append({"id": q["id"], "question": open_question(q, options), "answers": [q["choices"][q["answer"]]],
                      "context": "\n".join(docs[i]["text"] for i in ids), "split": q["split"]})
    rng.shuffle(items)
    need = n_train + n_dev + n_test
    if len(items) < need:
        raise ValueError(f"world {seed} has {len(items)} questions, fewer than the {need} asked for")
    return {"train": items[:n_train], "dev": items[n_train:n_train + n_dev],
            "test": items[n_train + n_dev:need]}
