"""Tests for genemill.genes on real tables: GEO GPL96/GPL97 (GSE781 family SOFT, GPL97.annot),
the GSE781 MAS5 sample tables, HG-Focus probe-set ids and org.Hs.eg.db 3.16.0."""

from __future__ import annotations

import gzip
import io
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genemill.errors import FormatError, InputError
from genemill.genes import (
    CollapseRule,
    GeneAnnotation,
    MultiGenePolicy,
    ProbeMap,
    ValueScale,
    detect_id_column,
    detect_value_scale,
    load_gene_annotation,
    load_org_hs_eg_db,
    map_to_genes,
    parse_numeric_column,
    probe_map_from_platform_table,
    to_log2,
)

DATA = Path(__file__).parents[1] / "data"
ORG_HS = DATA / "annotation-org-hs-eg-db"
GSE781 = DATA / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz"
GPL97_ANNOT = DATA / "geo-soft" / "geoquery-extdata" / "GPL97.annot.gz"
HG_FOCUS_RMA = DATA / "affy-hg-focus" / "reference" / "HG-Focus_affy_rma_log2.tsv"
HG_FOCUS_MAS5 = DATA / "affy-hg-focus" / "reference" / "HG-Focus_affy_mas5_signal.tsv"
RELEASE = "org.Hs.eg.db 3.16.0 (Entrez Gene 2022-Sep12, Ensembl 2022-Jun28)"
EGFR = "ENSG00000146648"
EGFR_PROBES = ["201983_s_at", "201984_s_at", "210984_x_at", "211550_at", "211551_at", "211607_x_at"]
GAPDH = "ENSG00000111640"


def read_soft_tables(path: Path) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]]:
    """Return every ``^PLATFORM``/``^SAMPLE`` data table of a SOFT file, keyed by accession, plus
    each entity's ``!`` attributes (first value only). A test helper, not a SOFT parser."""
    tables: dict[str, pd.DataFrame] = {}
    attributes: dict[str, dict[str, str]] = defaultdict(dict)
    entity = ""
    rows: list[str] | None = None
    with gzip.open(path, "rt", encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("^"):
                entity = line.split("=", 1)[1].strip()
            elif line.lower().startswith(("!platform_table_begin", "!sample_table_begin")):
                rows = []
            elif rows is not None and line.lower().startswith(("!platform_table_end", "!sample_table_end")):
                tables[entity] = pd.read_csv(
                    io.StringIO("".join(rows)), sep="\t", dtype=str, keep_default_na=False
                )
                rows = None
            elif rows is not None:
                rows.append(line)
            elif line.startswith("!") and "=" in line:
                key, value = line[1:].split("=", 1)
                attributes[entity].setdefault(key.strip(), value.strip())
    return tables, attributes


def read_annot_table(path: Path) -> pd.DataFrame:
    with gzip.open(path, "rt", encoding="latin-1") as fh:
        text = fh.read()
    body = text.split("!platform_table_begin\n", 1)[1].split("!platform_table_end", 1)[0]
    return pd.read_csv(io.StringIO(body), sep="\t", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def annotation() -> GeneAnnotation:
    return load_org_hs_eg_db(ORG_HS, source="org.Hs.eg.db 3.16.0")


@pytest.fixture(scope="module")
def gse781() -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]]:
    return read_soft_tables(GSE781)


@pytest.fixture(scope="module")
def gpl96(gse781: tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]]) -> pd.DataFrame:
    return gse781[0]["GPL96"]


@pytest.fixture(scope="module")
def gpl96_map(gpl96: pd.DataFrame, annotation: GeneAnnotation) -> ProbeMap:
    return probe_map_from_platform_table(gpl96, annotation, source="GEO GPL96 table (GSE781 family SOFT)")


@pytest.fixture(scope="module")
def gpl96_log2(gse781: tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]]) -> pd.DataFrame:
    """log2 MAS5 VALUE of the 17 GPL96 samples of GSE781 (probe ids × samples)."""
    tables, attributes = gse781
    samples = [name for name, attrs in attributes.items() if attrs.get("Sample_platform_id") == "GPL96"]
    columns = {name: tables[name].set_index("ID_REF")["VALUE"].astype(float) for name in samples}
    return np.log2(pd.DataFrame(columns))


# --- annotation -------------------------------------------------------------------------------------


def test_annotation_release_and_gene_table(annotation: GeneAnnotation) -> None:
    assert annotation.release == RELEASE
    assert len(annotation.entrez_to_ensembl) == 40_102  # PROVENANCE.md row count, no duplicates
    assert annotation.genes.loc["ENSG00000141510"].tolist() == ["TP53", "7157"]
    assert annotation.genes.loc["ENSG00000067601"].tolist() == ["PMS2P2|PMS2P4", "5380|5382"]
    assert annotation.genes.index.is_monotonic_increasing


def test_annotation_loads_in_under_a_second_or_so(annotation: GeneAnnotation) -> None:
    start = time.perf_counter()
    load_org_hs_eg_db(ORG_HS)
    assert time.perf_counter() - start < 3.0  # measured ~0.25 s; loose bound for a busy machine


@pytest.mark.parametrize(
    ("genes_tsv", "pairs_tsv", "metadata_tsv", "message"),
    [
        ("entrez\tsymbol\n1\tA1BG\n", "entrez_id\tensembl_gene_id\n", None, r"genes table: expected columns"),
        ("entrez_id\tsymbol\n1\tA1BG\n", "entrez_id\tgene\n1\tX\n", None, r"Entrez-Ensembl table: expected"),
        (
            "entrez_id\tsymbol\n1\tA1BG\n",
            "entrez_id\tensembl_gene_id\n1\tENSG00000121410\n",
            "name\tvalue\nEGSOURCEDATE\t2022-Sep12\n",
            r"missing \['ENSOURCEDATE'\]",
        ),
    ],
    ids=["genes-column", "pairs-column", "metadata-date"],
)
def test_load_gene_annotation_rejects_bad_tables(
    genes_tsv: str, pairs_tsv: str, metadata_tsv: str | None, message: str
) -> None:
    metadata = io.StringIO(metadata_tsv) if metadata_tsv is not None else None
    with pytest.raises(FormatError, match=message):
        load_gene_annotation(io.StringIO(genes_tsv), io.StringIO(pairs_tsv), metadata)


# --- probe maps from real platform tables ------------------------------------------------------------


def test_gpl96_probe_map_statistics(gpl96_map: ProbeMap) -> None:
    stats = gpl96_map.stats
    assert gpl96_map.key_column == "ENTREZ_GENE_ID"
    assert gpl96_map.annotation_release == RELEASE
    assert (stats.n_probes, stats.n_control, stats.n_mapped, stats.n_unmapped) == (22_283, 68, 20_607, 1_608)
    assert (stats.n_multi_gene, stats.n_genes, stats.n_genes_only_multi, stats.n_split) == (
        589,
        15_172,
        805,
        1_216,
    )
    assert stats.fraction_mapped == pytest.approx(20_607 / 22_215)  # 92.8 %


def test_gpl97_probe_maps_from_soft_and_annot(
    gse781: tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]], annotation: GeneAnnotation
) -> None:
    from_soft = probe_map_from_platform_table(gse781[0]["GPL97"], annotation, source="GEO GPL97 table")
    from_annot = probe_map_from_platform_table(
        read_annot_table(GPL97_ANNOT), annotation, source="GPL97.annot"
    )
    assert from_soft.key_column == "ENTREZ_GENE_ID"
    assert from_annot.key_column == "Gene ID"
    soft, annot = from_soft.stats, from_annot.stats
    # HG-U133B is mostly EST clusters: far fewer probe sets have a gene than on HG-U133A
    assert (soft.n_probes, soft.n_control, soft.n_mapped, soft.n_multi_gene) == (22_645, 68, 13_655, 178)
    assert (annot.n_probes, annot.n_control, annot.n_mapped, annot.n_multi_gene) == (22_645, 68, 12_423, 416)
    assert soft.fraction_mapped == pytest.approx(13_655 / 22_577)  # 60.5 % (2009 table)
    assert annot.fraction_mapped == pytest.approx(12_423 / 22_577)  # 55.0 % (2008 .annot, "///" unspaced)
    # the 2008 .annot says SNX3///NR2E1, the 2009 table only SNX3
    assert from_annot.genes_of("200067_x_at") == ["ENSG00000112333", "ENSG00000112335"]
    assert from_soft.genes_of("200067_x_at") == ["ENSG00000112335"]


def test_every_hg_focus_probe_set_is_on_gpl96(gpl96_map: ProbeMap) -> None:
    ids = pd.read_csv(HG_FOCUS_RMA, sep="\t", usecols=[0]).iloc[:, 0].astype(str)
    assert len(ids) == 8_793
    assert ids.isin(gpl96_map.probe_ids).all()
    position = gpl96_map.probe_ids.get_indexer(ids)
    mapped = np.isin(position, gpl96_map.pair_probe)
    control = gpl96_map.is_control[position]
    assert (int(mapped.sum()), int(control.sum()), int((~mapped & ~control).sum())) == (8_625, 47, 121)


def test_multi_gene_and_split_probes_are_told_apart(gpl96_map: ProbeMap) -> None:
    multi = gpl96_map.is_multi_gene[gpl96_map.probe_ids.get_loc("200017_at")]  # RPS27A /// UBB /// UBC
    assert multi
    assert gpl96_map.genes_of("200017_at") == ["ENSG00000143947", "ENSG00000150991", "ENSG00000170315"]
    # "100133684 /// 2621": the retired LOC id no longer resolves, so GAS6 alone, not multi-gene
    assert gpl96_map.genes_of("1598_g_at") == ["ENSG00000183087"]
    assert not gpl96_map.is_multi_gene[gpl96_map.probe_ids.get_loc("1598_g_at")]
    # one Entrez id (PRPF8, 10594) with two Ensembl ids is a split, not a multi-gene probe
    assert gpl96_map.genes_of("200000_s_at") == ["ENSG00000174231", "ENSG00000274442"]
    assert not gpl96_map.is_multi_gene[gpl96_map.probe_ids.get_loc("200000_s_at")]


def test_affx_controls_never_map(gpl96: pd.DataFrame, gpl96_map: ProbeMap) -> None:
    annotated = gpl96.set_index("ID").loc["AFFX-HUMGAPDH/M33197_3_at", "ENTREZ_GENE_ID"]
    assert annotated == "2597"  # the platform table does annotate the control to GAPDH
    assert gpl96_map.genes_of("AFFX-HUMGAPDH/M33197_3_at") == []
    assert int(gpl96_map.is_control.sum()) == 68


@pytest.mark.parametrize(
    ("table", "expected_genes", "key_column"),
    [
        (
            pd.DataFrame({"ID": ["p1", "p2"], "ENSEMBL_ID": ["ENSG00000141510.18", "ENSG99999999999"]}),
            1,
            "ENSEMBL_ID",
        ),
        (pd.DataFrame({"ID": ["p1", "p2"], "SYMBOL": ["TP53", "NOT_A_GENE"]}), 1, "SYMBOL"),
        # a GENE column of symbols is not taken for Entrez ids, so the symbol column is used
        (
            pd.DataFrame({"ID": ["p1", "p2"], "GENE": ["TP53", "EGFR"], "SYMBOL": ["TP53", "EGFR"]}),
            2,
            "SYMBOL",
        ),
        (
            pd.DataFrame({"ID": ["p1", "p2"], "GENE": ["7157", ""], "ENSEMBL": ["", EGFR]}),
            2,
            "GENE then ENSEMBL",
        ),
    ],
    ids=["ensembl-versioned", "symbol-only", "gene-column-of-symbols", "entrez-then-ensembl"],
)
def test_gene_column_detection_on_small_tables(
    table: pd.DataFrame, expected_genes: int, key_column: str, annotation: GeneAnnotation
) -> None:
    probe_map = probe_map_from_platform_table(table, annotation)
    assert probe_map.key_column == key_column
    assert probe_map.stats.n_genes == expected_genes


def test_explicit_columns_override_detection(annotation: GeneAnnotation) -> None:
    table = pd.DataFrame({"name": ["x"], "ID": ["p1"], "LL": ["7157"], "ENTREZ_GENE_ID": ["1956"]})
    probe_map = probe_map_from_platform_table(table, annotation, id_column="name", entrez_column="LL")
    assert (probe_map.probe_ids.tolist(), probe_map.genes_of("x")) == (["x"], ["ENSG00000141510"])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pd.DataFrame({"ID": ["p1"], "Description": ["x"]}), r"no Entrez, Ensembl or symbol column"),
        (pd.DataFrame({"ID": ["p1", "p1"], "ENTREZ_GENE_ID": ["1", "2"]}), r"1 duplicated probe ids in 'ID'"),
    ],
    ids=["no-gene-column", "duplicated-ids"],
)
def test_probe_map_rejects_bad_tables(table: pd.DataFrame, message: str, annotation: GeneAnnotation) -> None:
    with pytest.raises(InputError, match=message):
        probe_map_from_platform_table(table, annotation)


# --- mapping real sample values -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def naive_probe_genes(gpl96: pd.DataFrame) -> list[tuple[str, list[str], bool]]:
    """(probe id, genes, multi-gene) per GPL96 row, resolved with plain Python as a reference."""
    with gzip.open(ORG_HS / "entrez_ensembl_gene.tsv.gz", "rt") as fh:
        next(fh)
        ensembl_of: dict[str, set[str]] = defaultdict(set)
        for line in fh:
            entrez, gene = line.rstrip("\n").split("\t")
            ensembl_of[entrez].add(gene)
    rows = []
    for probe, cell in zip(gpl96["ID"], gpl96["ENTREZ_GENE_ID"], strict=True):
        if probe.startswith("AFFX-"):
            continue
        keys = {key.strip() for key in cell.split("///")} & ensembl_of.keys()
        genes = sorted(set().union(*(ensembl_of[key] for key in keys)))
        rows.append((probe, genes, len(keys) > 1 and len(genes) > 1))
    return rows


def naive_collapse(
    probe_genes: list[tuple[str, list[str], bool]],
    values: pd.Series,
    policy: MultiGenePolicy,
    rule: CollapseRule,
) -> pd.Series:
    """One sample, gene by gene, with the statistics module: the reference for map_to_genes."""
    specific: dict[str, list[float]] = defaultdict(list)
    shared: dict[str, list[float]] = defaultdict(list)
    for probe, genes, multi in probe_genes:
        for gene in genes:
            (shared if multi else specific)[gene].append(float(values[probe]))
    chosen = {}
    for gene in specific.keys() | shared.keys():
        if policy is MultiGenePolicy.COPY:
            probes = [*specific[gene], *shared[gene]]
        elif policy is MultiGenePolicy.DROP:
            probes = specific[gene]
        else:
            probes = specific[gene] or shared[gene]
        if probes:
            chosen[gene] = probes
    reducers: dict[CollapseRule, Callable[[list[float]], float]] = {
        CollapseRule.MEAN: statistics.fmean,
        CollapseRule.MEDIAN: statistics.median,
        CollapseRule.MAX_MEAN: max,  # one sample: the probe with the highest mean is the highest value
        CollapseRule.FIRST: lambda probes: probes[0],
    }
    reduce = reducers[rule]
    if rule is CollapseRule.FIRST and policy is MultiGenePolicy.COPY:
        # platform order mixes specific and shared probes: recompute the first in table order
        first: dict[str, float] = {}
        for probe, genes, _multi in probe_genes:
            for gene in genes:
                first.setdefault(gene, float(values[probe]))
        return pd.Series(first).sort_index()
    return pd.Series({gene: reduce(probes) for gene, probes in chosen.items()}).sort_index()


@pytest.mark.parametrize("policy", list(MultiGenePolicy), ids=str)
@pytest.mark.parametrize("rule", list(CollapseRule), ids=str)
def test_map_to_genes_matches_a_plain_python_reference(
    gpl96_map: ProbeMap,
    gpl96_log2: pd.DataFrame,
    naive_probe_genes: list[tuple[str, list[str], bool]],
    policy: MultiGenePolicy,
    rule: CollapseRule,
) -> None:
    sample = gpl96_log2[["GSM11805"]]
    result = map_to_genes(sample, gpl96_map, multi_gene=policy, collapse=rule)
    expected = naive_collapse(naive_probe_genes, sample["GSM11805"], policy, rule)
    assert result.expression.index.tolist() == expected.index.tolist()
    np.testing.assert_allclose(result.expression["GSM11805"].to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert result.genes.index.equals(result.expression.index)


def test_egfr_probes_collapse_to_mean_median_first_and_max_mean(
    gpl96: pd.DataFrame, gpl96_map: ProbeMap, gpl96_log2: pd.DataFrame
) -> None:
    single_entrez = gpl96.loc[gpl96["ENTREZ_GENE_ID"] == "1956", "ID"].tolist()
    assert single_entrez == EGFR_PROBES  # six probe sets, platform order, none multi-gene
    probes = gpl96_log2.loc[EGFR_PROBES]
    first = probes["GSM11805"]
    gene = {rule: map_to_genes(gpl96_log2, gpl96_map, collapse=rule) for rule in CollapseRule}
    assert gene[CollapseRule.MEAN].genes.loc[EGFR, ["symbol", "entrez_id", "n_probes"]].tolist() == [
        "EGFR",
        "1956",
        6,
    ]
    assert gene[CollapseRule.MEAN].expression.loc[EGFR, "GSM11805"] == pytest.approx(first.mean(), rel=1e-12)
    assert gene[CollapseRule.MEDIAN].expression.loc[EGFR, "GSM11805"] == pytest.approx(
        first.median(), rel=1e-12
    )
    assert gene[CollapseRule.FIRST].expression.loc[EGFR, "GSM11805"] == first["201983_s_at"]
    best = probes.mean(axis=1).idxmax()  # over the 17 GPL96 samples
    pd.testing.assert_series_equal(
        gene[CollapseRule.MAX_MEAN].expression.loc[EGFR], probes.loc[best], check_names=False
    )
    single = map_to_genes(gpl96_log2[["GSM11805"]], gpl96_map, collapse=CollapseRule.MAX_MEAN)
    assert single.expression.loc[EGFR, "GSM11805"] == first.max()


def test_gapdh_ignores_its_affx_control_probes(gpl96_map: ProbeMap, gpl96_log2: pd.DataFrame) -> None:
    result = map_to_genes(gpl96_log2[["GSM11805"]], gpl96_map)
    specific = gpl96_log2.loc[["212581_x_at", "213453_x_at", "217398_x_at"], "GSM11805"]
    assert result.genes.loc[GAPDH, "n_probes"] == 3
    assert result.expression.loc[GAPDH, "GSM11805"] == pytest.approx(specific.mean(), rel=1e-12)
    assert result.report.n_control == 68


@pytest.mark.parametrize(
    ("policy", "n_genes"),
    [(MultiGenePolicy.COPY, 3), (MultiGenePolicy.DROP, 0), (MultiGenePolicy.FALLBACK, 3)],
    ids=str,
)
def test_multi_gene_probe_copy_drop_fallback(
    gpl96_map: ProbeMap, gpl96_log2: pd.DataFrame, policy: MultiGenePolicy, n_genes: int
) -> None:
    values = gpl96_log2.loc[["200017_at"], ["GSM11805"]]  # RPS27A /// UBB /// UBC
    result = map_to_genes(values, gpl96_map, multi_gene=policy)
    assert len(result.expression) == n_genes
    assert (result.expression["GSM11805"] == values.iloc[0, 0]).all()
    assert (result.report.n_ambiguous, result.report.n_mapped) == (1, 1 if n_genes else 0)


def test_fallback_copies_only_to_genes_without_a_specific_probe(
    gpl96_map: ProbeMap, gpl96_log2: pd.DataFrame
) -> None:
    sample = gpl96_log2[["GSM11805"]]
    copy, drop, fallback = (map_to_genes(sample, gpl96_map, multi_gene=p).expression for p in MultiGenePolicy)
    assert len(fallback) == len(copy) == 15_172
    assert len(drop) == 15_172 - 805
    pd.testing.assert_frame_equal(fallback.loc[drop.index], drop)


def test_mapping_report_accounts_for_every_input_id(gpl96_map: ProbeMap, gpl96_log2: pd.DataFrame) -> None:
    values = pd.concat([gpl96_log2[["GSM11805"]], pd.DataFrame({"GSM11805": [1.0]}, index=["not_a_probe"])])
    drop = map_to_genes(values, gpl96_map).report
    copy = map_to_genes(values, gpl96_map, multi_gene=MultiGenePolicy.COPY).report
    assert (drop.n_input_ids, drop.n_control, drop.n_unmapped, drop.n_unknown_ids) == (22_284, 68, 1_609, 1)
    assert (drop.n_ambiguous, drop.n_mapped, copy.n_mapped) == (589, 20_018, 20_607)
    assert drop.n_input_ids == drop.n_control + drop.n_unmapped + drop.n_mapped + drop.n_ambiguous
    assert copy.n_input_ids == copy.n_control + copy.n_unmapped + copy.n_mapped
    assert drop.fraction_mapped == pytest.approx(20_018 / 22_216)
    assert (
        drop.as_dict() | {"annotation_release": RELEASE, "multi_gene": "drop", "collapse": "mean"}
        == drop.as_dict()
    )
    assert drop.n_genes == 14_367


def test_nan_values_are_ignored_by_mean_and_median(gpl96_map: ProbeMap, gpl96_log2: pd.DataFrame) -> None:
    values = gpl96_log2.loc[EGFR_PROBES, ["GSM11805"]].copy()
    values.iloc[[0, 2], 0] = np.nan
    kept = values["GSM11805"].dropna()
    for rule, expected in [(CollapseRule.MEAN, kept.mean()), (CollapseRule.MEDIAN, kept.median())]:
        result = map_to_genes(values, gpl96_map, collapse=rule)
        assert result.expression.loc[EGFR, "GSM11805"] == pytest.approx(expected, rel=1e-12)
    values.iloc[:, 0] = np.nan
    assert np.isnan(map_to_genes(values, gpl96_map, collapse=CollapseRule.MEDIAN).expression.iloc[0, 0])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (pd.DataFrame({"s": [1.0, 2.0]}, index=["201983_s_at", "201983_s_at"]), r"1 duplicated probe ids"),
        (
            pd.DataFrame({"s": ["1.0", "x"]}, index=["201983_s_at", "1053_at"]),
            r"columns \['s'\] are not numeric",
        ),
        (pd.DataFrame({"s": [np.inf, 2.0]}, index=["201983_s_at", "1053_at"]), r"1 infinite cells"),
    ],
    ids=["duplicated-ids", "text-values", "infinite"],
)
def test_map_to_genes_rejects_bad_values(values: pd.DataFrame, message: str, gpl96_map: ProbeMap) -> None:
    with pytest.raises(InputError, match=message):
        map_to_genes(values, gpl96_map)


def test_mapping_22k_probes_by_34_samples_is_fast(gpl96_map: ProbeMap, gpl96_log2: pd.DataFrame) -> None:
    # the 17 real GPL96 samples, each twice: 22,283 probe sets x 34 samples
    values = pd.concat([gpl96_log2, gpl96_log2.add_suffix("_again")], axis=1)
    timings = {}
    for rule in CollapseRule:
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            map_to_genes(values, gpl96_map, collapse=rule)
            runs.append(time.perf_counter() - start)
        timings[rule] = min(runs)
    assert timings[CollapseRule.MEAN] < 0.1, timings  # measured ~20-30 ms
    assert max(timings.values()) < 0.25, timings


# --- submitter tables -----------------------------------------------------------------------------------


def test_detect_id_column_on_a_real_sample_table(
    gse781: tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]],
) -> None:
    table = gse781[0]["GSM11805"]
    match = detect_id_column(table, gse781[0]["GPL96"]["ID"], sample="GSM11805", platform="GPL96")
    assert (match.column, match.overlap) == ("ID_REF", 1.0)
    message = r"^GSM11805: best identifier overlap 0\.8% \(column ID_REF vs GPL97\) is below 50%$"
    with pytest.raises(InputError, match=message):  # 168 shared ids (AFFX controls and a few more)
        detect_id_column(table, gse781[0]["GPL97"]["ID"], sample="GSM11805", platform="GPL97")


def test_detect_id_column_rejects_an_empty_table() -> None:
    with pytest.raises(InputError, match=r"GSM1: empty table \(0 rows, 1 columns\)"):
        detect_id_column(pd.DataFrame({"ID_REF": []}), ["1053_at"], sample="GSM1")


def test_parse_numeric_column_on_a_real_value_column(
    gse781: tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]],
) -> None:
    table = gse781[0]["GSM11805"]
    parsed = parse_numeric_column(table["VALUE"], row_ids=table["ID_REF"])
    assert (parsed.bad_cells, parsed.n_null) == ((), 0)
    assert parsed.values[:3].tolist() == [953.9, 2982.8, 1657.9]


def test_parse_numeric_column_reports_bad_cells_and_counts_nulls(
    gse781: tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]],
) -> None:
    table = gse781[0]["GSM11805"].head(12).copy()
    table.loc[[1, 3, 5, 6, 7, 8, 9], "VALUE"] = ["1,234", " n/a ", "", "12.5a", "NULL", "inf", "NA"]
    parsed = parse_numeric_column(table["VALUE"], row_ids=table["ID_REF"])
    ids = table["ID_REF"].tolist()
    assert parsed.bad_cells == ((ids[1], "1,234"), (ids[6], "12.5a"), (ids[8], "inf"))
    assert parsed.n_null == 4
    assert int(np.isnan(parsed.values).sum()) == 7
    assert parsed.values[0] == 953.9


def test_parse_numeric_column_row_ids_must_match() -> None:
    with pytest.raises(InputError, match=r"2 row ids for 1 values"):
        parse_numeric_column(["1"], row_ids=["a", "b"])
    assert parse_numeric_column(["x"]).bad_cells == (("0", "x"),)


def test_detect_value_scale_on_real_tables(gpl96_log2: pd.DataFrame) -> None:
    assert detect_value_scale(gpl96_log2.to_numpy()) is ValueScale.LOG2
    assert detect_value_scale(np.exp2(gpl96_log2.to_numpy())) is ValueScale.LINEAR  # MAS5 VALUE
    rma = pd.read_csv(HG_FOCUS_RMA, sep="\t", index_col=0)
    mas5 = pd.read_csv(HG_FOCUS_MAS5, sep="\t", index_col=0)
    assert (detect_value_scale(rma), detect_value_scale(mas5)) == (ValueScale.LOG2, ValueScale.LINEAR)


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        # generated: log2 values with one bogus 1000 — refine.bio's max > 100 would call this linear
        (np.r_[np.linspace(2.0, 14.0, 999), 1000.0], ValueScale.LOG2),
        (np.linspace(-3.0, 3.0, 1000), ValueScale.LOG2),  # generated log ratios
        (np.linspace(0.5, 1.9, 1000), ValueScale.LINEAR),  # generated linear ratios around 1
        (np.r_[np.linspace(-50.0, 5000.0, 1000)], ValueScale.LINEAR),  # background-subtracted
    ],
    ids=["log2-with-outlier", "log-ratios", "linear-ratios", "linear-with-negatives"],
)
def test_detect_value_scale_rules(values: np.ndarray, scale: ValueScale) -> None:
    assert detect_value_scale(values) is scale


def test_detect_value_scale_needs_finite_values() -> None:
    with pytest.raises(InputError, match="no finite values"):
        detect_value_scale(np.array([np.nan, np.inf]))


def test_to_log2_counts_what_has_no_logarithm() -> None:
    result = to_log2(np.array([[8.0, 0.0], [-3.0, np.nan]]))
    assert (result.n_zero, result.n_negative, result.n_missing) == (1, 1, 1)
    assert result.values[0, 0] == 3.0
    assert np.isnan(result.values[[0, 1, 1], [1, 0, 1]]).all()
    floored = to_log2(np.array([8.0, 0.0, -3.0]), floor=0.5)
    assert floored.values.tolist() == [3.0, -1.0, -1.0]
    with pytest.raises(InputError, match=r"floor must be > 0, found 0"):
        to_log2(np.array([1.0]), floor=0)


def test_submitter_pipeline_on_a_real_sample(
    gse781: tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]], gpl96_map: ProbeMap
) -> None:
    table = gse781[0]["GSM11805"]
    column = detect_id_column(table, gpl96_map.probe_ids, sample="GSM11805", platform="GPL96").column
    parsed = parse_numeric_column(table["VALUE"], row_ids=table[column])
    assert detect_value_scale(parsed.values) is ValueScale.LINEAR
    logged = to_log2(parsed.values)
    assert (logged.n_zero, logged.n_negative, logged.n_missing) == (0, 0, 0)
    values = pd.DataFrame({"GSM11805": logged.values}, index=table[column])
    result = map_to_genes(values, gpl96_map)
    assert result.report.fraction_mapped == pytest.approx(20_018 / 22_215)
    assert result.expression.shape == (14_367, 1)
