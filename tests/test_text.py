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


def test_the_ascii_shortcut_folds_like_the_general_path():
    import unicodedata

    def general(name, alphabet):
        decomposed = unicodedata.normalize("NFD", name)
        return "".join(c for c in decomposed if unicodedata.category(c) != "Mn" and c in set(alphabet)).strip()

    for name in ["Smith2/3:", "  Jones \n", "O'Neal", "\t\x00Ab-c;d ", "x y", "...", ""]:
        for alphabet in (DEFAULT_ALPHABET, "abc", "ab "):
            assert fold(name, alphabet) == general(name, alphabet)
