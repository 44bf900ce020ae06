"""Word lists the offline writer relies on: words a caption never starts or ends on, and openings
that lean on the sentence before.

Kept as plain sets so a reader can check them; all lower case. English first, with the commonest
German and French function words, since captions of pages in those languages follow the same rule.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ARTICLES_AND_DETERMINERS = _words(
    """a an the this that these those each every either neither some any no such what which whose whatever
    another other others both all half several enough own same"""
)
PRONOUNS = _words(
    """i me my mine myself you your yours yourself yourselves he him his himself she her hers herself it its
    itself we us our ours ourselves they them their theirs themselves who whom one ones someone something
    anyone anything everyone everything nobody nothing"""
)
AUXILIARIES = _words(
    """am is are was were be been being have has had having do does did doing will would shall should can
    could may might must ought isn't aren't wasn't weren't hasn't haven't hadn't doesn't don't didn't won't
    wouldn't can't cannot couldn't shouldn't mustn't let lets"""
)
PREPOSITIONS = _words(
    """about above across after against along amid among around as at before behind below beneath beside
    besides between beyond by despite down during except for from in inside into like near of off on onto
    out outside over past per since than through throughout till to toward towards under underneath unlike
    until up upon via with within without"""
)
CONJUNCTIONS = _words(
    """and but or nor so yet for because although though while whereas if unless whether once when whenever
    where wherever after before since until as than that"""
)
ADVERBS = _words(
    """also just only even still again already always never ever often sometimes usually very too quite
    rather really almost nearly here there then now today thus hence therefore however moreover furthermore
    meanwhile instead otherwise perhaps maybe indeed anyway back away else later soon not more most less
    least much many few well far how why right"""
)
OTHER_LANGUAGES = _words(
    """der die das den dem des ein eine einen einem einer und oder aber mit von zu zur zum im am auf für ist
    sind war nicht auch wie als bei aus nach über unter vor durch sich es er sie wir ihr
    le la les l un une des du de d au aux et ou mais avec pour par sur dans est sont en ce cette ces qui que
    il elle ils elles ne pas plus se sa son ses leur leurs"""
)

#: A caption never starts or ends on one of these.
FUNCTION_WORDS = (
    ARTICLES_AND_DETERMINERS | PRONOUNS | AUXILIARIES | PREPOSITIONS | CONJUNCTIONS | ADVERBS | OTHER_LANGUAGES
)

#: Verb forms that are never nouns: a caption that is a noun phrase does not end on one. Forms
#: that double as nouns ("change", "works", "leaves") are left out on purpose.
VERBS = _words(
    """say says said make makes made take takes took taken give gives gave given get gets got go goes went
    gone come comes came see sees saw seen know knows knew known think thinks thought find finds found put
    puts keep keeps kept held stood run runs ran become becomes became begin begins began begun showed shown hung
    fell fallen bring brings brought built seem seems seemed tell tells told felt lose loses lost paid met
    led grew grown tried believe believes happen happens happened include includes included continue
    continues continued rose risen rise rises broke broken chose chosen drew drawn drove driven flew flown
    forgot froze hid laid lent lit rang rode sang sank sat shot shut slept sold sent spent spoke spoken
    stole struck swam swung taught tore threw thrown understood woke wore won wrote written bought caught
    dealt dug fed fought fled meant sought shook shone slid stuck swore swept wept"""
)

#: Openings that refer back to the sentence before: "This", "However", "It", "The third ...".
REFERRING_OPENERS = _words(
    """this these that those it its they them their he she his her him such both another then however but
    and also yet so thus hence therefore still instead meanwhile moreover furthermore similarly likewise
    nevertheless nonetheless besides otherwise consequently accordingly afterwards finally later there's
    here"""
)

#: Ordinal words: "first ... second ... third" runs are narrated whole or not at all.
ORDINALS: dict[str, int] = {
    w: n
    for n, ws in enumerate(
        (
            "first firstly",
            "second secondly",
            "third thirdly",
            "fourth fourthly",
            "fifth fifthly",
            "sixth",
            "seventh",
            "eighth",
            "ninth",
            "tenth",
        ),
        start=1,
    )
    for w in ws.split()
}
