"""The ``tfidf`` strategy's analyzer: word n-grams where words are separated by spaces, character n-grams where
they are not (Chinese, Japanese, Thai), decided from the training texts and recorded in the run."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli, write_file

from tailtune.config import TFIDF_CHAR_NGRAMS, TfidfStage
from tailtune.data.readers import read_dataset
from tailtune.errors import TailTuneError
from tailtune.models.tfidf import choose_analyzer, make_pipeline
from tailtune.runs.records import load_run

#: Topic vocabularies of scripts written without spaces between words, and the function words mixed in.
UNSPACED = {
    "zh": {
        "topics": [
            "足球 比赛 球队 进球 教练 冠军 联赛 球员 射门 赛季",
            "股市 投资 银行 利率 市场 经济 股票 基金 涨幅 债券",
            "手机 芯片 软件 电脑 网络 数据 系统 算法 研发 屏幕",
            "电影 明星 演员 导演 音乐 歌手 票房 综艺 专辑 观众",
        ],
        "filler": "的 了 在 是 我们 今天 他们 这个 一个 已经 非常 表示 认为 记者 报道 昨天 可能 继续",
    },
    "ja": {
        "topics": [
            "サッカー 試合 選手 監督 優勝 得点 リーグ 球場 代表 決勝",
            "株価 銀行 投資 市場 金利 円安 景気 証券 物価 決算",
            "スマホ 半導体 データ 通信 開発 画面 電池 機能 端末 回線",
            "映画 俳優 監督作 歌手 舞台 公開 主演 番組 人気 新曲",
        ],
        "filler": "は が を に の で と です ました 今日 また 昨日 さらに 発表 関係者 によると",
    },
}


def make_unspaced_texts(script: str, counts: dict[int, int], seed: int = 0) -> tuple[list[str], list[str]]:
    """Texts of a script without spaces: three topic words of their label, one of any topic and function words,
    joined with nothing."""
    rng = random.Random(seed)
    vocab = UNSPACED[script]
    texts, labels = [], []
    for label, n in counts.items():
        topic = vocab["topics"][label].split()
        for _ in range(n):
            other = vocab["topics"][rng.randrange(len(vocab["topics"]))].split()  # some noise: any topic's word
            filler = rng.choices(vocab["filler"].split(), k=rng.randint(4, 10))
            words = rng.choices(topic, k=3) + rng.choices(other, k=1) + filler
            rng.shuffle(words)
            texts.append("".join(words) + "。")
            labels.append(f"topic{label}")
    return texts, labels


def write_unspaced(folder: Path, script: str) -> tuple[Path, Path]:
    """A long-tailed training file (120/60/35/22 texts) and a balanced test file (20 per class) of ``script``."""
    files = []
    for name, counts, seed in (("train", {0: 120, 1: 60, 2: 35, 3: 22}, 0), ("test", dict.fromkeys(range(4), 20), 1)):
        texts, labels = make_unspaced_texts(script, counts, seed=seed)
        files.append(folder / f"{script}-{name}.csv")
        pd.DataFrame({"text": texts, "label": labels}).to_csv(files[-1], index=False)
    return files[0], files[1]


@pytest.mark.parametrize("script", ["zh", "ja"])
def test_text_without_spaces_is_read_in_characters(script, tmp_path, capsys):
    """Chinese and Japanese texts: auto reads character n-grams, and the baseline beats the majority class (macro-F1
    0.1 on the balanced test file) by far; config.json keeps what was asked, the history entry and the metrics say
    what was read and why, the model's record and the fitted pipeline what it reads."""
    train, test = write_unspaced(tmp_path, script)
    code, out, err = run_cli(capsys, "train", "--strategy", "tfidf", "--train", train, "--test", test, "--output",
                             tmp_path / "run", "-q")  # fmt: skip
    assert code == 0, err
    run = load_run(tmp_path / "run")
    assert run.metrics["macro_f1"] > 0.8
    assert run.config["run"]["stages"][0]["analyzer"] == "auto"
    (entry,) = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert entry["analyzer"] == run.metrics["stages"][0]["analyzer"] == "char"
    assert entry["analyzer_reason"].startswith("auto: 237 of 237 training texts are written without spaces")
    record = json.loads((tmp_path / "run" / "model" / "tailtune.json").read_text())
    assert record["stage"]["analyzer"] == "char"
    vectorizer = joblib.load(tmp_path / "run" / "model" / "pipeline.joblib").named_steps["tfidf"]
    assert (vectorizer.analyzer, vectorizer.ngram_range) == ("char_wb", TFIDF_CHAR_NGRAMS)
    assert "WARNING" not in err


def test_text_with_spaces_keeps_the_word_vectorizer(tiny_data, tmp_path):
    """English: auto builds the word vectorizer of before, with the same settings (so the same model)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = read_dataset(tiny_data["train"]).texts
    assert choose_analyzer(texts)[0] == "word"
    built = make_pipeline(TfidfStage(), texts=texts).named_steps["tfidf"]
    plain = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    terms = ("tokenizer", "token_pattern")  # word_terms: scikit-learn's words where no letter runs unspaced
    assert {k: v for k, v in built.get_params().items() if k not in terms} == {
        k: v for k, v in plain.get_params().items() if k not in terms
    }
    assert built.fit(texts).vocabulary_ == plain.fit(texts).vocabulary_
    assert make_pipeline(TfidfStage(ngram_max=3, analyzer="word")).named_steps["tfidf"].ngram_range == (1, 3)


@pytest.mark.parametrize(
    ("texts", "analyzer"),
    [
        (["ทีมฟุตบอลชนะการแข่งขันเมื่อวานนี้ แฟนบอลดีใจมาก", "ราคาหุ้นปรับตัวขึ้นในตลาดวันนี้"], "char"),  # Thai
        (["中国队 昨天 在 比赛 中 获得 了 冠军", "股市 今天 大幅 上涨"], "word"),  # Chinese segmented with spaces
        (
            ["축구 대표팀이 경기에서 승리했다", "주식 시장이 오늘 크게 올랐다"],
            "word",
        ),  # Korean puts spaces between words
        (["股市大涨", "Apple 发布了新的 iPhone 手机", "the match was won"], "char"),  # two of three run together
        (["股市大涨", "the match was won", "shares rose sharply"], "word"),  # one of three: not most
        (["😀🎉", "😡💢 !", "the match"], "char"),  # two of three hold no word: words would find no term
    ],
)
def test_the_rule_counts_texts_that_run_their_words_together(texts, analyzer):
    assert choose_analyzer(texts)[0] == analyzer


def test_a_given_analyzer_is_kept_and_a_bad_one_refused():
    texts = make_unspaced_texts("zh", {0: 5, 1: 5})[0]
    assert make_pipeline(TfidfStage(analyzer="word"), texts=texts).named_steps["tfidf"].analyzer == "word"
    assert make_pipeline(TfidfStage(analyzer="char")).named_steps["tfidf"].analyzer == "char_wb"
    with pytest.raises(TailTuneError, match="analyzer"):
        TfidfStage(analyzer="chars")


def test_chinese_texts_among_english_ones_share_terms(tmp_path):
    """Fewer than half the texts run their words together, so words are read; Chinese letters are terms of their
    own among them (a whole run was one word: a Chinese text shared no term with another)."""
    from conftest import make_texts

    from tailtune.classifier import TailTuner

    english, topics = make_texts({"sport": 150, "tech": 100, "money": 60}, seed=1)
    chinese, labels = make_unspaced_texts("zh", {0: 60, 1: 40, 2: 30, 3: 20}, seed=0)
    tuner = TailTuner(strategy="tfidf", show_progress=False).fit(english + chinese, topics + labels)
    assert tuner.classic_.stage.analyzer == "word"
    test, truth = make_unspaced_texts("zh", dict.fromkeys(range(4), 20), seed=1)
    assert (tuner.predict(test) == np.array(truth)).mean() > 0.8


def test_a_vocabulary_of_one_term_per_text_is_a_warning_that_quiet_shows(tmp_path):
    """Texts of one code each: no term is shared; the command warns on stderr, -q or not."""
    rows = "".join(f"ref{i:05d}x,{'ab'[i % 2]}\n" for i in range(237))
    train = write_file(tmp_path / "codes.csv", "text,label\n" + rows)
    test = write_file(tmp_path / "codes-test.csv", "text,label\nref99999x,a\nref99998x,b\n")
    config = write_file(tmp_path / "word.yaml", yaml.safe_dump({"strategy": "tfidf", "stages": [{"analyzer": "word"}]}))
    result = subprocess.run([sys.executable, "-m", "tailtune", "train", "--config", str(config), "--train", str(train),
                             "--test", str(test), "--output", str(tmp_path / "run"), "-q"], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert "237 of 237 training texts have at most one TF-IDF term that another training text has" in warning
    assert "analyzer: char" in warning
