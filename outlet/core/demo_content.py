# ruff: noqa: E501  (prose: one paragraph per line reads better than wrapped strings)
"""Original sample content for `make run`: written for the demo, about invented places."""

from typing import Any

SECTIONS = [
    ("Politics", "politics", "Power, parties and the people who hold them to account."),
    ("Economy", "economy", "Budgets, wages, prices and who pays for what."),
    ("World", "world", "Elections and alliances beyond our borders."),
    ("Opinion", "opinion", "Arguments from our writers and guests."),
]

AUTHORS = [
    ("Maren Holt", "maren-holt", "Maren Holt has covered the state legislature for twelve years."),
    (
        "Idris Calloway",
        "idris-calloway",
        "Idris Calloway writes about public money and the economy.",
    ),
    ("Paula Stein", "paula-stein", "Paula Stein is the outlet's foreign affairs editor."),
    ("Tomás Reyes", "tomas-reyes", "Tomás Reyes is a columnist and former city council member."),
]

APPEAL = {
    "name": "Default appeal",
    "heading": "Journalism like this is paid for by readers like you",
    "text": (
        "We have no owner, no paywall and no advertisers to please. For twenty years this "
        "analysis has been free to read because thousands of readers chip in. If it helped "
        "you understand something today, please consider a gift: monthly support keeps "
        "reporters on the statehouse beat all year."
    ),
    "button_label": "Support our journalism",
}

_LONG_BODY = """
<p>When the Riverside County redistricting commission published its final map on a Friday evening in March, most of the state's political class was already at dinner. By Monday morning, three incumbents had announced they would not run again, a fourth had moved house, and a coalition of civic groups had filed the first of what would become eleven lawsuits. The map itself was four pages long. Its consequences will take a decade to play out.</p>
<p>This piece tries to explain what the commission actually did, why the numbers look the way they do, and what the fight over the lines tells us about the state of representation in a place where the population has grown by a fifth in twenty years but the legislature has not grown at all.</p>
<h2>How the lines were drawn</h2>
<p>The commission was created by a ballot measure that passed narrowly a decade ago. Its fourteen members, five from each major party and four unaffiliated, are chosen from a pool of volunteers screened by the state auditor. The measure requires districts to be equal in population, contiguous, respectful of "communities of interest", and, where possible, compact. It forbids drawing lines to favour or disfavour any party or incumbent.</p>
<p>That last rule is the one everyone argues about. In practice, a commission cannot avoid knowing where voters of each party live, and every line it draws helps someone. What the rule does is change the question the commission asks. Instead of "how many seats can we win?", it asks "which towns belong together?", and the partisan result follows from the answers.</p>
<h3>Communities of interest</h3>
<p>Over eight months the commission held forty-one public hearings and received more than nine thousand written comments. The most common request, by a wide margin, was some version of "keep our town in one district". The second was "keep us out of the city's district". Both are reasonable; they are also, very often, impossible to satisfy at once.</p>
<p>The river towns north of the capital are the clearest example. Their residents commute south, shop south and send their children to the state university in the south. But they vote, and think of themselves, as a rural community. The old map tied them to the capital's suburbs. The new one joins them with the farming counties to the east, a change that pleased almost everyone who testified and removed one of the state's few genuinely competitive seats.</p>
<blockquote class="pull-quote"><p>“A fair map is not the same thing as a competitive one. Sometimes the fairest line is the one that makes the outcome obvious.”</p></blockquote>
<h2>What the numbers say</h2>
<p>Analysts measure partisan fairness with a handful of statistics. The efficiency gap counts the votes each party "wastes", either in losing districts or beyond what it needed to win. The mean-median difference compares a party's average vote share across districts with its share in the middle district. Neither is perfect, and both move with the political weather.</p>
<p>On the previous decade's results, the new map's efficiency gap is a little under three per cent, against nearly nine for the map it replaces. Its mean-median difference is close to zero. By these measures it is one of the fairest maps the state has had. By the measure voters notice, the number of seats that could plausibly change hands, it is less generous: the count falls from eleven to seven.</p>
<figure><img src="/static/img/demo-map.svg" alt="A schematic map of the state divided into forty districts, with the seven competitive districts shaded" width="1200" height="675"><figcaption>The seven districts the commission's own analysis rates as competitive. Illustration: The Outlet.</figcaption></figure>
<h3>The incumbents</h3>
<p>Because the commission may not consider where incumbents live, nineteen of them found themselves sharing a district with a colleague. Some of these pairings resolved themselves through retirements. Others will be decided in primaries that are already unusually expensive for this early in the cycle.</p>
<h2>The lawsuits</h2>
<p>The eleven challenges fall into three groups. Four argue that particular districts split communities the commission was required to keep whole. Three, brought by voting-rights organisations, argue that the map dilutes the voting strength of the growing Latino population in the southern valley. The remainder are procedural, contending that the commission adopted its final map without the required notice.</p>
<p>The procedural cases are the weakest: the commission's minutes show the notices were posted, if late in the day. The voting-rights claims are the most serious, and the state supreme court has agreed to hear them together before the filing deadline in June.</p>
<h2>What comes next</h2>
<p>Whatever the court decides, the episode has already changed how the state argues about representation. Legislators who once drew their own districts now campaign in ones drawn by strangers. Civic groups that spent the last decade demanding an independent process are now among its sharpest critics. And voters in the river towns, who asked to be put with their neighbours, got their wish, and with it a seat that will no longer be decided in November.</p>
<p>The commission's chair, a retired schoolteacher from the eastern plains, put it plainly at the final hearing: "We were asked to draw fair lines, not to guarantee exciting elections. I think we did what we were asked." The courts, and eventually the voters, will say whether that was enough.</p>
"""

ARTICLES: list[dict[str, Any]] = [
    {
        "slug": "how-the-new-district-map-was-drawn",
        "headline": "How the new district map was drawn, and why it will be fought over for a decade",
        "dek": "The commission produced one of the fairest maps in the state's history. It also cut the number of competitive seats nearly in half.",
        "section": "politics",
        "authors": ["maren-holt", "idris-calloway"],
        "kind": "analysis",
        "tags": ["Redistricting", "Elections", "State legislature"],
        "hours_ago": 5,
        "body": _LONG_BODY,
        "image": True,
    },
    {
        "slug": "the-budget-surplus-nobody-wants-to-spend",
        "headline": "The budget surplus nobody wants to spend",
        "dek": "A windfall from sales taxes has left both parties arguing for restraint, for different reasons.",
        "section": "economy",
        "authors": ["idris-calloway"],
        "kind": "analysis",
        "tags": ["Budget", "Taxes"],
        "hours_ago": 26,
        "body": (
            "<p>For the second year running the state has collected more than it planned to spend. "
            "The finance committee's chair wants to put most of it in the rainy-day fund; the minority "
            "leader wants a one-off rebate. Neither wants to be seen starting new programmes in an "
            "election year.</p><h2>Where the money came from</h2><p>Most of the surplus comes from "
            "sales taxes on goods whose prices rose faster than anyone forecast. That makes it, in "
            "effect, a tax on inflation, and it is paid disproportionately by households that spend "
            "most of what they earn.</p><h2>What restraint costs</h2><p>School districts have asked "
            "for help with transport costs that have doubled in three years. Saving the surplus means "
            "telling them no, and that choice has consequences too.</p>"
        ),
    },
    {
        "slug": "coalition-talks-stall-in-the-north",
        "headline": "Coalition talks stall as the northern provinces count the cost of a hung parliament",
        "dek": "Six weeks after the vote, the two largest parties still disagree about who should lead.",
        "section": "world",
        "authors": ["paula-stein"],
        "kind": "news",
        "tags": ["Elections", "Coalitions"],
        "hours_ago": 50,
        "body": (
            "<p>Negotiators met again on Tuesday without agreeing a timetable. The liberal bloc insists "
            "its leader should head the government; the agrarian party, which won more seats but fewer "
            "votes, says the same of its own.</p><h2>A caretaker government</h2><p>Until a deal is "
            "reached the outgoing cabinet remains in office with limited powers. It cannot pass a "
            "budget, which becomes a problem in the spring.</p>"
        ),
    },
    {
        "slug": "in-defence-of-boring-local-elections",
        "headline": "In defence of boring local elections",
        "dek": "Low-drama races for school boards and water districts are where trust in government is built.",
        "section": "opinion",
        "authors": ["tomas-reyes"],
        "kind": "opinion",
        "tags": ["Local government", "Elections"],
        "hours_ago": 75,
        "body": (
            "<p>Nobody ever lost sleep over a water board election. That is the point. The offices "
            "that keep pipes working and buses running are the ones most people meet, and they work "
            "best when they are dull.</p><h2>The cost of excitement</h2><p>When national fights "
            "arrive in these races, turnout rises for a year and competence falls for a decade.</p>"
        ),
    },
    {
        "slug": "what-the-transit-vote-means-for-commuters",
        "headline": "What the transit vote means for commuters",
        "dek": "The council approved the bus network redesign. Here is what changes, route by route.",
        "section": "politics",
        "authors": ["maren-holt"],
        "kind": "news",
        "tags": ["Transport", "Local government"],
        "hours_ago": 98,
        "body": (
            "<p>The council voted seven to four on Thursday to adopt the redesign, which trades "
            "coverage for frequency: fewer routes, but buses every ten minutes on the busiest.</p>"
            "<h2>Who gains, who loses</h2><p>Riders on the cross-town corridors gain the most. "
            "Riders at the edges of the network will walk further to a stop.</p>"
        ),
    },
    {
        "slug": "wages-are-rising-why-doesnt-it-feel-like-it",
        "headline": "Wages are rising. Why doesn't it feel like it?",
        "dek": "Pay has outpaced prices for a year, but rent and childcare tell a different story.",
        "section": "economy",
        "authors": ["idris-calloway", "paula-stein"],
        "kind": "analysis",
        "tags": ["Wages", "Cost of living"],
        "hours_ago": 130,
        "body": (
            "<p>By the official measures, the typical worker is better off than a year ago. By the "
            "measures households use, the bills that arrive every month, many are not.</p>"
            "<h2>Averages hide the rent</h2><p>Housing costs weigh far more in the budgets of "
            "younger and lower-paid workers than in the index.</p>"
        ),
    },
]

#: The demo's articles are written in this language.
LANGUAGE = "en"

#: On a bilingual site (SITE_LANGUAGES with more than one), the lead story is published
#: in these languages too, linked to it as its translations (demo_load).
TRANSLATIONS: dict[str, dict[str, Any]] = {
    "es": {
        "of": "how-the-new-district-map-was-drawn",
        "slug": "como-se-trazo-el-nuevo-mapa-de-distritos",
        "headline": "Cómo se trazó el nuevo mapa de distritos",
        "dek": "Una comisión independiente redibujó los cuarenta distritos del estado. Los números dicen que el mapa es más justo; los candidatos dicen que es menos disputado.",
        "body": (
            "<p>Cuando la comisión de redistribución publicó su mapa definitivo un viernes por la noche de marzo, buena parte de la clase política del estado ya estaba cenando. El lunes por la mañana, tres legisladores habían anunciado que no volverían a presentarse, otro se había mudado de casa y un grupo de organizaciones cívicas había presentado la primera de once demandas.</p>"
            "<h2>Cómo se trazaron las líneas</h2>"
            "<p>La comisión tiene catorce miembros: cinco de cada uno de los dos grandes partidos y cuatro independientes. La ley le exige distritos con la misma población, continuos y respetuosos con las «comunidades de interés», y le prohíbe favorecer a ningún partido ni a ningún titular.</p>"
            "<p>En ocho meses celebró cuarenta y una audiencias públicas y recibió más de nueve mil comentarios por escrito. La petición más repetida, con diferencia, fue alguna versión de «que nuestro pueblo quede en un solo distrito».</p>"
            "<h2>Lo que dicen los números</h2>"
            "<p>Con los resultados de la década anterior, la brecha de eficiencia del nuevo mapa queda algo por debajo del tres por ciento, frente a casi nueve en el mapa al que sustituye. Pero los escaños que de verdad pueden cambiar de manos pasan de once a siete.</p>"
        ),
    },
}
