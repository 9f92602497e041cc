"""Exercise 01 (exercises/01_rag.ipynb): wire a hybrid retriever, pick chunk sizes, set a
threshold, design a prompt layout that answers as many train questions right as the default.

Each check measures the learner's answer on the bundled data (test or train split), so a check
passes because the answer works, not because it matches one string.
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, meta

from kit.checks import Incorrect, Question, as_number

RECALL_BAR = 0.95
"""q1: recall@5 the hybrid pipeline must reach on the test split."""
CHUNK_BAR = 0.95
"""q2: hybrid recall@3 the chunk settings must reach on the train split (settings are chosen on
train; the test split stays for the final figure): 40-150 words reach it, 200 and more do not."""
CHUNK_WORDS = (20, 400)
"""q2: allowed chunk lengths in words (tiny chunks lose context, huge ones flood the prompt)."""
MAX_LOST = 1
"""q3: the threshold may wrongly refuse at most this many answerable train questions."""
JOINER_NAMES = ("bm25", "embed_query", "dense", "join")
LAYOUT_QUESTIONS = 12
"""q4: train questions (the usual type mix) both layouts answer; yours must get as many right."""


@cache
def default_index():
    """The index the exercise (and its checks) use: bundled v1, default chunk settings."""
    from kit.indexing import build_index

    return build_index()


@cache
def _index(split_length: int, split_overlap: int):
    from kit.indexing import build_index

    return build_index(split_length=split_length, split_overlap=split_overlap)


def _recall(pipeline, index_k: int, records) -> float:
    from kit.evaluate import retrieval_scores
    from kit.retrieval import retrieve

    found = [retrieve(pipeline, r.question).doc_ids for r in records]
    return float(retrieval_scores(records, found, index_k)[f"recall@{index_k}"].mean())


def _answerable(split: str):
    from kit.data import load_qa

    return [r for r in load_qa(split) if r.answerable]


def _check_hybrid(hybrid: object) -> str:
    from haystack import Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.joiners.document_joiner import JoinMode

    if not isinstance(hybrid, Pipeline):
        raise Incorrect(f"`hybrid` should be a haystack Pipeline, not {type(hybrid).__name__}.")
    names = set(hybrid.graph.nodes)
    missing = [n for n in JOINER_NAMES if n not in names]
    if missing:
        raise Incorrect(
            f"The pipeline has no component named {missing[0]!r}; name them "
            f"{', '.join(JOINER_NAMES)} so kit.retrieval.retrieve can run it."
        )
    join = hybrid.get_component("join")
    if not isinstance(join, DocumentJoiner):
        raise Incorrect("`join` should be a DocumentJoiner: it merges the two ranked lists.")
    if join.join_mode != JoinMode.RECIPROCAL_RANK_FUSION:
        raise Incorrect(
            f"The joiner uses {join.join_mode.value!r}; BM25 and cosine scores are on different "
            "scales, so fuse the ranks: join_mode='reciprocal_rank_fusion'."
        )
    senders = {edge[0] for edge in hybrid.graph.in_edges("join")}
    if senders != {"bm25", "dense"}:
        raise Incorrect(f"`join` should receive bm25 and dense; it receives {sorted(senders)}.")
    recall = _recall(hybrid, 5, _answerable("test"))
    if recall < RECALL_BAR:
        raise Incorrect(
            f"It runs, but recall@5 is {recall:.3f}, below {RECALL_BAR}: give each retriever "
            "enough candidates (top_k around 20) before fusing."
        )
    return f"Recall@5 on the test split: {recall:.3f}, better than either retriever alone."


def _check_chunks(split_length: object, split_overlap: object) -> str:
    from kit.retrieval import retrieval_pipeline

    split_length = int(as_number(split_length, "split_length", whole=True))
    split_overlap = int(as_number(split_overlap, "split_overlap", whole=True))
    lo, hi = CHUNK_WORDS
    if split_length < lo:
        raise Incorrect(
            f"{split_length} words is too small a chunk to hold a fact and its context."
        )
    if split_length > hi:
        raise Incorrect(f"{split_length}-word chunks are so long that a few fill the prompt.")
    if not 0 <= 2 * split_overlap < split_length:
        raise Incorrect(
            f"An overlap of {split_overlap} words is not useful with {split_length}-word chunks: "
            "keep it below half the chunk length."
        )
    index = _index(split_length, split_overlap)
    recall = _recall(retrieval_pipeline(index, "hybrid"), 3, _answerable("train"))
    if recall < CHUNK_BAR:
        raise Incorrect(
            f"Hybrid recall@3 with {split_length}-word chunks (overlap {split_overlap}) is "
            f"{recall:.3f}, below {CHUNK_BAR}. Try another size."
        )
    return (
        f"{index.chunks} chunks; hybrid recall@3 = {recall:.3f}. Smaller chunks make shorter "
        "prompts, bigger ones keep more context: both matter for the answer."
    )


OFF_TOPIC: tuple[str, ...] = (
    "What is the capital of France?",
    "Who wrote Romeo and Juliet?",
    "How do I bake sourdough bread?",
    "Which planet is closest to the sun?",
    "How many players are on a football team?",
    "What is the tallest mountain in the world?",
    "Can you recommend a good science fiction novel?",
    "Who painted the Mona Lisa?",
)
"""q3: questions the knowledge base has nothing to say about."""


@cache
def similarities() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Best dense cosine of each answerable train question, and of each OFF_TOPIC question."""
    from kit.retrieval import retrieval_pipeline, retrieve

    pipeline = retrieval_pipeline(default_index(), "dense")
    answerable = tuple(retrieve(pipeline, r.question).similarity for r in _answerable("train"))
    off_topic = tuple(retrieve(pipeline, q).similarity for q in OFF_TOPIC)
    return answerable, off_topic


def _check_threshold(min_score: object) -> str:
    min_score = as_number(min_score, "min_score (a cosine similarity)")
    answerable, off_topic = similarities()
    caught = sum(s < min_score for s in off_topic)
    lost = sum(s < min_score for s in answerable)
    summary = (
        f"min_score={min_score} abstains on {caught} of {len(off_topic)} off-topic questions "
        f"and wrongly on {lost} of {len(answerable)} answerable train questions"
    )
    if lost > MAX_LOST:
        raise Incorrect(f"{summary}: too strict, lower it.")
    if caught < len(off_topic):
        raise Incorrect(f"{summary}: too lenient, raise it.")
    return (
        f"{summary}. Questions about the company that the documents do not answer score much "
        "higher than off-topic ones: a threshold cannot catch those, the prompt has to."
    )


SOLUTION_LAYOUT = """from kit.prompts import REPLY_START, Layout

my_layout = Layout(
    "three-sentences",
    "the 3 sentences most like the question, titled, the reply started",
    sentences=3,
    reply_start=REPLY_START,
)"""


@cache
def layout_scores(layout) -> tuple[int, int, int]:
    """(right with ``layout``, right with the default layout, questions) on the q4 sample."""
    from kit.data import load_qa, sample_questions
    from kit.prompts import DEFAULT_LAYOUT
    from kit.rag_eval import compare_layouts

    records = sample_questions(load_qa("train"), LAYOUT_QUESTIONS)
    scores = compare_layouts(
        default_index(),
        [DEFAULT_LAYOUT, layout],
        generator=_generator(),
        records=records,
        limit=0,
        max_new_tokens=32,
    )
    right = scores.groupby("layout", sort=False)["correct"].sum()
    return int(right.iloc[-1]), int(right.iloc[0]), len(records)


@cache
def _generator():
    from kit.models import load_generator

    return load_generator()


def _check_layout(my_layout: object) -> str:
    from kit.prompts import DEFAULT_LAYOUT, Layout

    if not isinstance(my_layout, Layout):
        kind = type(my_layout).__name__
        raise Incorrect(f"`my_layout` should be a kit.prompts.Layout, not {kind}.")
    filled = meta.find_undeclared_variables(Environment().parse(my_layout.user))
    for slot in ("sources", "question"):
        if slot not in filled:
            raise Incorrect(
                f"The user template must contain {{{{ {slot} }}}}, where the kit fills it in."
            )
    if my_layout.name == DEFAULT_LAYOUT:
        raise Incorrect(f"Give your layout its own name, not {DEFAULT_LAYOUT!r}.")
    mine, default, n = layout_scores(my_layout)
    summary = f"your layout answered {mine} of {n} train questions right, the default {default}"
    if mine < default:
        raise Incorrect(
            f"{summary}. Try shorter sources, the rules in another place, or keep the default's "
            "reply_start (the started reply is most of its lead)."
        )
    return (
        f"{summary}. On {n} questions a difference of one or two is noise: run "
        "rag_eval.compare_layouts on more train questions (limit=0: all 128) before you trust it."
    )


q1 = Question(
    "Question 1",
    ["hybrid"],
    _check_hybrid,
    "Add InMemoryBM25Retriever ('bm25'), SentenceTransformersTextEmbedder ('embed_query'), "
    "InMemoryEmbeddingRetriever ('dense') and DocumentJoiner ('join') with "
    "join_mode='reciprocal_rank_fusion'; connect embed_query.embedding -> dense.query_embedding, "
    "and both retrievers -> join. Give each retriever top_k=20.",
    """hybrid = Pipeline()
hybrid.add_component("bm25", InMemoryBM25Retriever(document_store=index.store, top_k=20))
hybrid.add_component(
    "embed_query", SentenceTransformersTextEmbedder(model=EMBEDDER, progress_bar=False)
)
hybrid.add_component("dense", InMemoryEmbeddingRetriever(document_store=index.store, top_k=20))
hybrid.add_component("join", DocumentJoiner(join_mode="reciprocal_rank_fusion"))
hybrid.connect("embed_query.embedding", "dense.query_embedding")
hybrid.connect("bm25", "join")
hybrid.connect("dense", "join")""",
)
q2 = Question(
    "Question 2",
    ["split_length", "split_overlap"],
    _check_chunks,
    "The kit's default is 100 words with 20 shared. Anything from about 40 to 150 words with an "
    "overlap of 10-20% works; try build_index(split_length=..., split_overlap=...) and "
    "evaluate_retrieval(..., split='train') yourself first.",
    "split_length = 80\nsplit_overlap = 15",
)
q3 = Question(
    "Question 3",
    ["min_score"],
    _check_threshold,
    "Compare the best-match similarities of OFF_TOPIC questions with those of the company's "
    "answerable questions (the `similarity` of a dense retrieval): pick a value in between.",
    "min_score = 0.3",
)
q4 = Question(
    "Question 4",
    ["my_layout"],
    _check_layout,
    "Start from a layout in kit.prompts.LAYOUTS, give it a new name and change one thing: the "
    "number of sentences, titles or not, the wording of the rules, the reply_start "
    "(dataclasses.replace(layout, name=..., sentences=3)). Keep the question last: a 135M "
    "model copies whatever comes after the sources.",
    SOLUTION_LAYOUT,
)
