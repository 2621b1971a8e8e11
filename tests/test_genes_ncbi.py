from __future__ import annotations

import io

import pytest

from genemill.errors import FormatError
from genemill.genes.ncbi import read_ncbi_gene_tables

INFO = "#tax_id\tGeneID\tSymbol\tModification_date\n9606\t1956\tEGFR\t20220912\n10090\t13649\tEgfr\t20220901\n"
PAIRS = "#tax_id\tGeneID\tEnsembl_gene_identifier\n9606\t1956\tENSG00000146648\n9606\t1956\tENSG00000146648\n10090\t13649\tENSMUSG00000020122\n"


def test_ncbi_tables_give_one_species_gene_space() -> None:
    annotation = read_ncbi_gene_tables(io.StringIO(INFO), io.StringIO(PAIRS), tax_id=9606)
    assert list(annotation.genes.index) == ["ENSG00000146648"]
    assert annotation.genes.loc["ENSG00000146648", "symbol"] == "EGFR"
    assert annotation.release == "NCBI Gene gene_info + gene2ensembl (tax_id 9606, modified up to 20220912)"


@pytest.mark.parametrize(
    ("info", "pairs", "message"),
    [
        ("#tax_id\tGeneID\n9606\t1\n", PAIRS, r"gene_info: expected NCBI columns .* missing \['Symbol', 'Modification_date'\]"),
        (INFO, "#tax_id\tGeneID\n9606\t1\n", r"gene2ensembl: expected NCBI columns .* missing \['Ensembl_gene_identifier'\]"),
        (INFO.replace("9606", "1"), PAIRS, r"no rows for tax_id 9606 in gene_info \(0\)"),
    ],
    ids=["info-columns", "pairs-columns", "no-species-rows"],
)
def test_bad_ncbi_tables_are_named(info: str, pairs: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        read_ncbi_gene_tables(io.StringIO(info), io.StringIO(pairs))
