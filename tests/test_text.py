from charclf.text import DEFAULT_ALPHABET, fold


def test_alphabet_is_the_tutorials():
    assert len(DEFAULT_ALPHABET) == 57
    assert DEFAULT_ALPHABET.endswith(" .,;'")


def test_fold_drops_accents_the_tutorial_way():
    assert fold("Ślusàrski") == "Slusarski"
    assert fold("Müller") == "Muller"
    assert fold("Nguyễn") == "Nguyen"
    assert fold("O'Neal") == "O'Neal"


def test_fold_drops_what_the_alphabet_lacks():
    assert fold("Smith2/3:") == "Smith"
    assert fold("Иванов") == ""  # no Latin letters at all
    assert fold("😀") == ""
    assert fold("  Jones \n") == "Jones"


def test_fold_follows_a_custom_alphabet():
    assert fold("Abc", alphabet="abc") == "bc"
