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

#: Function words of other languages (articles, pronouns, prepositions, conjunctions, auxiliaries and
#: common adverbs), by primary language tag: a caption in that language never starts or ends on one,
#: and they carry no topic when sentences are ranked. Only for articles in that language, so a word
#: that is a noun in English ("son", "era", "die") never changes an English caption.
FUNCTION_WORDS_BY_LANGUAGE: dict[str, frozenset[str]] = {
    "es": _words(
        """el la los las lo un una unos unas al del de a ante bajo con contra desde durante en entre hacia hasta
        mediante para por según sin sobre tras y e ni o u pero sino aunque porque pues como que cuando donde
        mientras si ya también tampoco muy más menos tan tanto aquí allí ahí ahora hoy siempre nunca todavía aún
        es son era eran fue fueron ser estar está están estaba estaban ha han había habían hay he hemos
        se me te le les nos os su sus mi mis tu tus nuestro nuestra nuestros nuestras este esta estos estas ese
        esa esos esas aquel aquella cual cuales quien quienes cuyo yo tú él ella ellos ellas usted ustedes
        nosotros vosotros no sí solo sólo así bien otro otra otros otras todo toda todos todas cada mismo misma
        muchos muchas poco pocos algo alguno alguna algunos algunas nada"""
    ),
    "pt": _words(
        """o a os as um uma uns umas ao aos à às do da dos das de em no na nos nas num numa dum duma por pelo pela
        pelos pelas para pra com sem sob sobre entre até desde contra e ou nem mas porém porque pois como que
        quando onde enquanto se já também muito muita muitos muitas mais menos tão tanto aqui ali lá agora hoje
        sempre nunca ainda é são era eram foi foram ser estar está estão estava estavam tem têm tinha tinham há
        vai vão me te lhe lhes nos vos seu sua seus suas meu minha meus minhas teu tua nosso nossa este esta
        estes estas esse essa esses essas isso isto aquele aquela aquilo qual quais quem cujo eu tu ele ela
        eles elas você vocês nós não sim só apenas assim bem outro outra outros outras todo toda todos todas
        cada mesmo mesma pouco poucos algo algum alguma alguns algumas nada"""
    ),
    "it": _words(
        """il lo la i gli le un uno una un' l' al allo alla ai agli alle del dello della dei degli delle di a da in
        con su per tra fra nel nello nella nei negli nelle sul sullo sulla sui sugli sulle dal dallo dalla dai
        dagli dalle e ed o od ma però perché poiché come che quando dove mentre se già anche molto molta molti
        molte più meno tanto qui qua lì là ora oggi sempre mai ancora è sono era erano fu furono essere stato
        stata ha hanno aveva avevano c' ci si mi ti gli vi ne suo sua suoi sue mio mia miei mie tuo tua nostro
        nostra questo questa questi queste quello quella quelli quelle cui quale quali chi io tu lui lei noi voi
        loro non sì solo così bene altro altra altri altre tutto tutta tutti tutte ogni stesso stessa poco pochi
        qualche nulla niente"""
    ),
    "nl": _words(
        """de het een den der des van in op aan met voor door bij naar uit over onder tussen tot zonder tegen om
        sinds tijdens en of maar want omdat dus als dan dat die dit deze wie wat waar wanneer hoe ook al nog
        zeer heel erg meer minder veel weinig hier daar nu vandaag altijd nooit is zijn was waren wordt worden
        werd werden heeft hebben had hadden kan kunnen zal zullen zou zouden moet moeten mag er ik jij je u hij
        zij ze wij we jullie hen hun hem haar mijn jouw ons onze niet geen wel zo alleen ander andere alle elk
        elke iets niets zich zelf"""
    ),
    "de": _words(
        """der die das den dem des ein eine einen einem einer eines und oder aber denn sondern doch mit von zu zur
        zum im am an auf für ist sind war waren wird werden wurde wurden hat haben hatte hatten kann können muss
        müssen soll sollen nicht auch wie als bei aus nach über unter vor hinter neben zwischen durch gegen ohne
        um seit während bis sich es er sie wir ihr ich du man sein seine ihre ihr ihren unser dieser diese dieses
        diesen jener welche welcher welches dass wenn weil ob noch schon nur sehr mehr viel viele wenig hier dort
        da dann jetzt heute immer nie kein keine keinen etwas nichts alle allen jeder jede jedes so dabei dazu
        darauf daran damit davon oberhalb unterhalb innerhalb außerhalb"""
    ),
    "fr": _words(
        """le la les l un une des du de d au aux à et ou mais donc or ni car avec pour par sur sous dans entre vers
        chez sans contre depuis pendant avant après est sont était étaient fut a ont avait avaient été être
        avoir en ce cet cette ces qui que quoi dont où il elle ils elles on je tu nous vous me te se lui leur
        leurs ne pas plus moins très trop aussi encore déjà toujours jamais ici là alors quand comme si sa son
        ses mon ma mes ton ta tes notre nos votre vos y tout toute tous toutes chaque même autre autres peu
        beaucoup rien quelque quelques plusieurs certains certaines"""
    ),
    "ru": _words(
        """и в во на с со к ко по о об от до из за для без под над при про через между у а но или да же ли бы не
        ни что чтобы как так когда где если то это этот эта эти тот та те его её их он она оно они мы вы я ты
        себя свой своя свои который которая которые был была было были быть есть будет уже ещё еще очень тоже
        также только здесь там теперь сегодня всегда никогда все всё весь вся каждый другой другие"""
    ),
}


def function_words(lang: str | None) -> frozenset[str]:
    """The function words of ``lang`` (a tag such as "pt-BR"); empty for English and for languages not listed."""
    return FUNCTION_WORDS_BY_LANGUAGE.get((lang or "en").split("-")[0].lower(), frozenset())


#: Verb endings that are never nouns, by language (gerunds): a caption does not end on them.
VERB_ENDINGS = {"es": ("ando", "iendo", "yendo"), "pt": ("ando", "endo", "indo"), "it": ("ando", "endo")}


def verb_endings(lang: str | None) -> tuple[str, ...]:
    """The verb endings of ``lang`` a caption never ends on (none for English: its rule is in the writer)."""
    return VERB_ENDINGS.get((lang or "en").split("-")[0].lower(), ())


#: Openings of a Chinese clause that lean on the one before ("but", "and", "so", "because", "then").
WIDE_OPENERS = ("而且", "而", "但是", "但", "并且", "并", "所以", "因为", "因此", "如果", "虽然", "不过", "然后",
                "于是",
                "还有", "也", "就", "和", "与", "及", "或者", "或")
