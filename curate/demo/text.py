"""Hand-written text pools for the synthetic demo corpus (``curate demo-data``).

Each topic carries its own vocabulary (entities), facts and question templates, so that a 2-D map of
prompt embeddings shows one cluster per topic and c-TF-IDF keywords recover the topic name. The
non-English pools are real sentences in each language so that language ID recognises them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """One subject area. ``facts`` and ``questions`` may use the ``{e}`` (entity) and ``{t}`` (topic) slots."""

    name: str
    entities: tuple[str, ...]
    facts: tuple[str, ...]
    questions: tuple[str, ...]
    tags: tuple[str, ...] = ()  # Stack Exchange tags; non-empty marks a programming topic
    code: tuple[str, ...] = ()  # code snippet templates for programming topics


def _lines(s: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in s.strip().split("\n") if x.strip())


def _t(name: str, entities: str, facts: str, questions: str, tags: str = "", code: tuple[str, ...] = ()) -> Topic:
    return Topic(name, _lines(entities), _lines(facts), _lines(questions), tuple(tags.split()), code)


TOPICS: tuple[Topic, ...] = (
    _t(
        "cooking",
        """a cast iron skillet
risotto
a pan sauce
caramelized onions
a beef stew
homemade stock
a vinaigrette
roast chicken
fresh pasta
a stir fry
braised short ribs
a tomato sauce""",
        """Browning meat before braising builds flavor through the Maillard reaction.
Salt the water for pasta generously, roughly like mild sea water.
A hot pan and dry ingredients are the secret to a good sear.
Deglazing the pan with wine or stock lifts the browned bits into a sauce.
Resting roasted meat for ten minutes keeps the juices inside when you slice it.
Acid such as lemon juice or vinegar brightens a dish that tastes flat.
Onions need at least thirty minutes over low heat to caramelize properly.
Stock made from roasted bones has a deeper color and a richer flavor.
Mise en place means measuring and chopping everything before the stove is on.
A vinaigrette is usually three parts oil to one part vinegar.
Crowding the pan steams food instead of browning it.
Taste and adjust the seasoning at the end of cooking, not only at the start.
Carryover heat raises the internal temperature of a roast by a few degrees after it leaves the oven.
Fresh herbs go in at the end, while dried herbs need time to release their flavor.
Sharp knives are safer than dull ones because they do not slip.
A splash of starchy pasta water helps a sauce cling to the noodles.""",
        """How do I make {e} at home without it going wrong?
What is the trick to cooking {e} like a restaurant chef?
I keep ruining {e}. What am I doing wrong in my cooking?
Any cooking tips for {e} on a weeknight?""",
    ),
    _t(
        "baking",
        """sourdough bread
a sourdough starter
croissants
chocolate chip cookies
a sponge cake
pie crust
brioche
banana bread
macarons
cinnamon rolls
focaccia
scones""",
        """Weighing flour with a kitchen scale is far more accurate than using measuring cups.
Cold butter creates the flaky layers in pie crust and laminated dough.
Gluten develops as dough is kneaded, giving bread its chewy structure.
A sourdough starter needs regular feedings of flour and water to stay active.
Oven thermometers often reveal that an oven runs hotter or cooler than its dial says.
Baking soda needs an acid to react, while baking powder already contains one.
Letting cookie dough rest overnight deepens the flavor and reduces spreading.
Bread is fully baked when its internal temperature reaches about ninety five degrees Celsius.
Overmixing muffin and cake batter makes the crumb tough.
Steam in the first minutes of baking helps bread rise and form a crisp crust.
Eggs at room temperature whip to a larger volume than cold eggs.
Proofing times depend heavily on kitchen temperature, so watch the dough rather than the clock.
A pinch of salt makes sweet bakes taste more balanced.
Parchment paper prevents sticking and makes cleanup easier.
Brown sugar keeps cookies soft because it holds more moisture than white sugar.
Cooling baked goods on a wire rack stops the bottoms from turning soggy.""",
        """Why did my {e} come out dense and flat?
What is the best baking method for {e}?
How do I get {e} right on my first baking attempt?
Can you walk me through baking {e} at home?""",
    ),
    _t(
        "astronomy",
        """black holes
the Andromeda galaxy
Jupiter's moons
a solar eclipse
neutron stars
the Milky Way
exoplanets
the Orion Nebula
Saturn's rings
meteor showers
red giant stars
the Big Bang""",
        """Light from the Sun takes about eight minutes to reach Earth.
A light year is the distance light travels in one year, almost ten trillion kilometers.
The Andromeda galaxy is about two and a half million light years away.
Jupiter has dozens of known moons, and the four largest were found by Galileo.
Neutron stars pack more mass than the Sun into a sphere the size of a city.
Telescopes collect light, so a larger aperture reveals fainter objects.
Meteor showers happen when Earth passes through debris left by a comet.
Most exoplanets are found by watching a star dim as a planet crosses in front of it.
Saturn's rings are made mostly of ice with some rock and dust.
A total solar eclipse is visible only from a narrow path on Earth's surface.
Stars like the Sun swell into red giants near the end of their lives.
The Milky Way is a barred spiral galaxy with hundreds of billions of stars.
Dark skies far from city lights make faint galaxies and nebulae visible.
Nebulae are clouds of gas and dust where new stars are born.
The cosmic microwave background is leftover radiation from the early universe.
An event horizon marks the boundary beyond which nothing escapes a black hole.""",
        """What should an amateur astronomer know about {e}?
Can you explain {e} in simple astronomy terms?
How do astronomers study {e}?
Is it possible to observe {e} with a backyard telescope?""",
    ),
    _t(
        "gardening",
        """tomato plants
raised garden beds
compost
roses
a vegetable garden
garden soil
perennial flowers
herb gardens
fruit trees
lawn care
seed starting
garden pests""",
        """Most vegetables need at least six hours of direct sunlight a day.
Compost adds organic matter that improves soil structure and drainage.
Water deeply and less often so that roots grow down into the soil.
Mulch keeps soil moist, cools the roots and smothers weeds.
Tomatoes should be planted deep because roots grow along the buried stem.
A soil test tells you the pH and which nutrients your garden lacks.
Raised beds warm up earlier in spring and drain well after rain.
Deadheading spent flowers encourages many plants to bloom again.
Crop rotation reduces disease by moving plant families to a new bed each year.
Companion planting, such as basil near tomatoes, can deter some pests.
Prune fruit trees in late winter while they are dormant.
Seedlings need to be hardened off outdoors for a week before transplanting.
Morning watering lets leaves dry during the day, which limits fungal disease.
Earthworms are a sign of healthy, living garden soil.
A thick layer of wood chips on paths keeps weeds down for a whole season.
Pinching the tips of herbs makes them grow bushier.""",
        """How do I take care of {e} in my garden?
What gardening mistakes should I avoid with {e}?
When is the best time of year to work on {e}?
I'm new to gardening. Where do I start with {e}?""",
    ),
    _t(
        "personal finance",
        """an emergency fund
a Roth IRA
index funds
credit card debt
a monthly budget
a credit score
a mortgage
retirement savings
a high yield savings account
student loans
compound interest
a 401k match""",
        """An emergency fund should cover three to six months of essential expenses.
Paying credit cards in full each month avoids interest charges entirely.
Index funds spread your money across hundreds of companies at a very low fee.
Compound interest means you earn returns on your earlier returns.
Always take the full employer match in a 401k, because it is free money.
A budget works best when it tracks where money actually goes, not where you wish it went.
Paying the highest interest debt first, the avalanche method, saves the most money.
Your credit score depends mostly on payment history and how much credit you use.
Fees of one percent a year can consume a large share of long term investment growth.
Automating savings on payday makes saving a habit rather than a decision.
A fixed rate mortgage keeps the same payment for the whole loan term.
Diversification lowers the risk that one bad investment ruins your plan.
Keep money you need within five years out of the stock market.
Refinancing student loans can lower the rate but may remove federal protections.
Lifestyle inflation quietly absorbs raises unless you save part of each one.
A Roth account is funded with taxed money, and qualified withdrawals are tax free.""",
        """How should I think about {e} in my personal finances?
Is {e} worth it for someone in their twenties?
What is the smartest way to handle {e} on a tight budget?
Can you explain {e} like I'm new to personal finance?""",
    ),
    _t(
        "car repair",
        """brake pads
an engine oil change
a car battery
spark plugs
a flat tire
the check engine light
the alternator
coolant
a timing belt
windshield wipers
the transmission fluid
a squeaky serpentine belt""",
        """Most modern engines need an oil change every eight to fifteen thousand kilometers.
A squealing noise when braking usually means the pads are worn down to the indicator.
A car battery typically lasts three to five years before it weakens.
The check engine light can be read with an inexpensive OBD2 scanner.
Never open the radiator cap while the engine is hot, because the coolant is under pressure.
Spark plugs that are worn cause misfires, rough idling and poor fuel economy.
Tire pressure should be checked monthly when the tires are cold.
A failing alternator often shows up as dim headlights and a battery warning light.
Timing belts must be replaced on schedule, since a snapped belt can wreck the engine.
Torque lug nuts in a star pattern so the wheel seats evenly.
Brake fluid absorbs water over time and should be flushed every two years.
A jack alone is never safe, so always support the car on jack stands.
Dark or burnt smelling transmission fluid is a warning sign.
Coolant protects the engine from both freezing and overheating.
Rotating tires every ten thousand kilometers evens out tread wear.
A serpentine belt that squeals on cold mornings is often glazed or loose.""",
        """How do I deal with {e} on my car myself?
Is it hard to do car repair work on {e} at home?
What tools do I need for {e}, and how long does the repair take?
My mechanic mentioned {e}. What should I know about this car repair?""",
    ),
    _t(
        "chess",
        """the Sicilian Defense
the endgame
a knight fork
castling
the Queen's Gambit
pawn structure
opening principles
a back rank checkmate
the Ruy Lopez
time management in blitz
the en passant rule
a rook endgame""",
        """In the opening, control the center and develop knights and bishops quickly.
Castling early keeps the king safe and connects the rooks.
A knight fork attacks two pieces at once, often winning material.
In the endgame the king becomes an active, fighting piece.
Doubled pawns are usually a weakness because they cannot protect each other.
A rook belongs behind passed pawns, whether they are yours or your opponent's.
Back rank checkmates happen when the king is trapped behind its own pawns.
Moving the same piece twice in the opening usually wastes time.
Tactics such as pins, forks and skewers decide most games between club players.
The en passant rule lets a pawn capture another pawn that just moved two squares.
Solving chess puzzles every day trains pattern recognition.
A bishop pair is a long term advantage in open positions.
Before every move, check what your opponent is threatening.
The Sicilian Defense fights for the center with the c pawn instead of the e pawn.
Opposition in king and pawn endgames often decides who wins.
Reviewing your own lost games teaches more than playing many quick ones.""",
        """How do I play {e} better in chess?
What chess ideas should a club player learn about {e}?
Can you explain {e} to a beginner chess player?
Why do strong chess players care so much about {e}?""",
    ),
    _t(
        "music theory",
        """the circle of fifths
minor scales
chord progressions
time signatures
the dominant seventh chord
intervals
key signatures
modes like Dorian
voice leading
syncopation
the ii V I progression
relative major and minor keys""",
        """The circle of fifths arranges keys so that neighbors share all but one note.
A major scale follows the pattern whole, whole, half, whole, whole, whole, half.
The natural minor scale is the sixth mode of the major scale.
A dominant seventh chord wants to resolve to the tonic a fifth below.
Intervals are named by counting letter names, such as a third or a fifth.
Time signatures tell you how many beats are in each measure and which note gets the beat.
Relative major and minor keys share the same key signature.
The ii V I progression is the backbone of jazz harmony.
Good voice leading moves each voice by the smallest possible step.
Syncopation places accents on weak beats to create rhythmic tension.
The Dorian mode sounds like minor with a raised sixth.
Triads are built by stacking two thirds on a root note.
A cadence is a chord progression that ends a musical phrase.
Sharps in a key signature always appear in the order F, C, G, D, A, E, B.
Ear training helps you hear intervals before you name them.
Inversions put a note other than the root in the bass.""",
        """Can you explain {e} in music theory?
How do musicians use {e} when writing songs?
What is the easiest way to learn {e} as a music theory beginner?
Why does {e} matter in music theory?""",
    ),
    _t(
        "photography",
        """aperture
shutter speed
ISO
portrait lighting
long exposure
a prime lens
the rule of thirds
white balance
landscape photography
RAW files
depth of field
night photography""",
        """A wide aperture such as f/1.8 gives a shallow depth of field and a blurred background.
Fast shutter speeds freeze motion, while slow ones blur it.
Raising the ISO brightens the photo but adds digital noise.
The rule of thirds places the subject along lines that divide the frame into thirds.
Soft window light is one of the most flattering light sources for portraits.
A tripod is essential for long exposures of waterfalls or night skies.
Shooting in RAW keeps more data for adjusting exposure and white balance later.
Golden hour, just after sunrise or before sunset, gives warm and soft light.
Prime lenses have a fixed focal length and are often sharper than zooms.
White balance corrects the color cast from different light sources.
Focus on the eyes when photographing people or animals.
The exposure triangle links aperture, shutter speed and ISO.
A polarizing filter cuts reflections and deepens blue skies.
Back button focus separates focusing from taking the picture.
Leading lines guide the viewer's eye through a photograph.
Histograms show exposure more honestly than the camera screen.""",
        """How do I use {e} to take better photos?
What photography settings matter for {e}?
Can you explain {e} for a beginner photographer?
I'm struggling with {e} in my photography. Any advice?""",
    ),
    _t(
        "running",
        """a first marathon
interval training
running shoes
shin splints
a 5K race
long runs
running cadence
trail running
a tempo run
recovery days
hill repeats
a couch to 5K plan""",
        """Most training runs should be at an easy pace where you can hold a conversation.
Increase weekly running mileage by no more than about ten percent.
Interval training alternates hard efforts with easy recovery jogs.
Running shoes usually need replacing after six to eight hundred kilometers.
Shin splints often come from doing too much running too soon.
A tempo run is a sustained effort at a comfortably hard pace.
Long runs build the endurance needed for half marathons and marathons.
A higher cadence with shorter strides reduces the impact on the knees.
Rest days are when the body actually adapts to the training.
Hill repeats build leg strength and improve running form.
Trail running uses more stabilizing muscles than running on roads.
Fueling with carbohydrates matters for runs longer than ninety minutes.
A taper in the last two weeks before a race lets the legs recover.
Strength training twice a week lowers the risk of running injuries.
Start a race slower than goal pace and finish strong.
Sleep is one of the most underrated parts of a running plan.""",
        """How should I prepare for {e} as a new runner?
What running advice do you have about {e}?
Is {e} important for improving my running?
Can you build me a simple running plan around {e}?""",
    ),
    _t(
        "dog training",
        """leash pulling
crate training
a puppy that bites
recall training
separation anxiety
house training
clicker training
a reactive dog
teaching sit and stay
jumping on guests
socializing a puppy
barking at the door""",
        """Reward the behavior you want within a second or two so the dog connects the two.
Short training sessions of five to ten minutes work better than long ones.
A crate should be a comfortable den, never a punishment.
Puppies need to go outside after waking, eating and playing.
Stop walking whenever the leash goes tight, and move on when it is loose.
A clicker marks the exact moment the dog does the right thing.
Socialization between eight and sixteen weeks shapes a dog's adult temperament.
Practice recall with high value treats in a quiet place before trying it at the park.
Ignoring a dog that jumps up removes the attention it is seeking.
Separation anxiety improves with very gradual practice of short absences.
Consistency matters, so everyone in the household should use the same cues.
Tired dogs behave better, so daily exercise supports training.
Punishment can make a reactive dog more fearful and more reactive.
Teach an incompatible behavior, such as sitting, instead of only saying no.
Puppies explore with their mouths, so redirect biting onto a toy.
Add distance, duration and distraction one at a time when training a stay.""",
        """How do I fix {e} with my dog?
What dog training method works for {e}?
My dog struggles with {e}. Where should I begin?
How long does dog training for {e} usually take?""",
    ),
    _t(
        "home coffee brewing",
        """a pour over
a French press
espresso at home
a burr grinder
cold brew
a moka pot
coffee beans
an AeroPress
latte art
water temperature for coffee
the coffee to water ratio
descaling a coffee machine""",
        """A burr grinder produces a much more even grind than a blade grinder.
A common brewing ratio is about one gram of coffee to sixteen grams of water.
Water just off the boil, around ninety three degrees Celsius, extracts coffee well.
Coffee beans taste best within a few weeks of the roast date.
A French press needs a coarse grind and about four minutes of steeping.
Sour coffee is usually under extracted, while bitter coffee is over extracted.
Espresso is brewed with nine bars of pressure in twenty five to thirty seconds.
Cold brew steeps coarse grounds in cold water for twelve to twenty four hours.
Store beans in an airtight container away from light and heat.
A moka pot makes strong coffee using steam pressure on the stove.
Blooming pour over coffee lets carbon dioxide escape before the main pour.
Hard water leaves scale inside machines, so descale them regularly.
Grinding right before brewing preserves the aromatic oils.
Milk for latte art should be steamed to a glossy, fine microfoam.
Light roasts keep more origin flavors, while dark roasts taste of the roast itself.
An AeroPress is forgiving and easy to clean, which suits travelers.""",
        """How do I brew better coffee with {e}?
What coffee brewing mistakes do people make with {e}?
Can you explain {e} for a home coffee enthusiast?
Is {e} worth it for brewing coffee at home?""",
    ),
    _t(
        "woodworking",
        """a dovetail joint
a table saw
wood glue
sanding
a mortise and tenon joint
hand planes
wood finish
a workbench
chisels
pocket hole joinery
a router
wood grain""",
        """Always let the wood acclimate to your shop before cutting it.
Sharp chisels and planes cut cleaner and are safer than dull ones.
Wood glue joints are often stronger than the wood itself.
Sand with the grain, moving through the grits without skipping more than one.
A table saw needs a riving knife to prevent dangerous kickback.
Mortise and tenon joints have been used in furniture for thousands of years.
Measure twice and cut once remains the most useful woodworking rule.
Oil finishes soak in, while polyurethane forms a protective film on top.
Clamps are the tool every woodworker wishes they had more of.
Wood moves with humidity, so tabletops must be attached to allow movement.
Dovetails resist being pulled apart, which is why drawers use them.
A sturdy workbench makes nearly every other woodworking task easier.
Dust collection protects your lungs as well as your finish.
Cutting against the grain causes tear out on the surface.
Pocket hole joinery is fast and strong for cabinets and face frames.
Test a finish on a scrap piece before applying it to the project.""",
        """How do I get started with {e} in woodworking?
What woodworking tips do you have for {e}?
Why does my {e} not come out right in the shop?
Can you explain {e} to a beginner woodworker?""",
    ),
    _t(
        "birdwatching",
        """binoculars
bird songs
backyard bird feeders
warblers
hawks and raptors
a field guide
bird migration
hummingbirds
shorebirds
owls
a birding journal
nest boxes""",
        """Binoculars labeled eight by forty two are a popular all round choice for birding.
Early morning is the most active time of day for songbirds.
Learning bird songs lets you identify birds you cannot see.
Spring and autumn migration bring species that are absent the rest of the year.
Feeders with black oil sunflower seed attract the widest range of birds.
Note size, shape, behavior and habitat before worrying about color.
Hummingbird feeders need a simple solution of one part sugar to four parts water.
Owls are easiest to find at dusk by listening for their calls.
Shorebirds gather on mudflats when the tide is falling.
Keeping a birding journal helps you notice seasonal patterns.
Nest boxes should face away from prevailing winds and direct afternoon sun.
Clean bird feeders regularly to prevent the spread of disease.
Raptors often soar on warm thermals in the middle of the day.
Moving slowly and quietly lets birds carry on with their natural behavior.
A good field guide shows similar species side by side.
Citizen science counts help researchers track bird populations.""",
        """How do I get into birdwatching with {e}?
What should a birdwatcher know about {e}?
Any birding tips for {e} this season?
How can I learn more about {e} as a beginner birder?""",
    ),
    _t(
        "knitting",
        """a knit stitch
a purl stitch
casting on
circular needles
a cable pattern
yarn weight
a first scarf
knitting gauge
dropped stitches
binding off
a sweater pattern
blocking knitwear""",
        """A gauge swatch tells you whether your knitting will match the pattern's size.
Worsted weight yarn and medium needles are friendly for a first project.
The long tail cast on is stretchy and works for most knitting.
Purl stitches are simply knit stitches worked from the other side.
Stockinette stitch alternates a knit row and a purl row.
A crochet hook is the easiest tool for picking up a dropped stitch.
Circular needles can knit flat pieces as well as tubes.
Cables are made by crossing stitches over each other with a spare needle.
Blocking evens out stitches and sets the final shape of a piece.
Stitch markers keep track of pattern repeats and the start of a round.
Binding off too tightly makes an edge that will not stretch.
Wool fibers have memory, so wool garments bounce back into shape.
Reading your knitting helps you spot mistakes before they grow.
A lifeline threaded through a row makes it safe to rip back.
Tension improves with practice, so early unevenness is normal.
Weave in yarn ends along the back of stitches so they stay hidden.""",
        """How do I learn {e} in knitting?
What knitting mistakes happen with {e}, and how do I fix them?
Can you explain {e} to a new knitter?
Which yarn and needles should I use for {e}?""",
    ),
    _t(
        "hiking",
        """a day hike
hiking boots
the ten essentials
trail navigation
blisters
a hiking backpack
hiking in the rain
altitude sickness
trekking poles
water filters
a first overnight trip
bear safety""",
        """Tell someone your hiking route and the time you expect to be back.
The ten essentials include navigation, a headlamp, sun protection, first aid and extra food.
Break in new hiking boots on short walks before a long trail.
Treat blisters early by covering hot spots with tape or moleskin.
Trekking poles reduce strain on the knees during steep descents.
Carry more water than you think you need, especially in hot weather.
Weather in the mountains can change within an hour.
Altitude sickness is best treated by descending to a lower elevation.
A map and compass work when the phone battery is dead.
Cotton clothing stays wet and cold, so hikers prefer wool or synthetic layers.
Store food in a bear canister in bear country.
Leave no trace means packing out everything you pack in.
Start early in summer to avoid afternoon thunderstorms on exposed ridges.
A hiking backpack should carry most of its weight on the hips.
Water filters remove bacteria and protozoa from stream water.
Turn around when conditions get worse, since the summit will still be there.""",
        """How should I prepare for {e}?
What hiking gear do I need for {e}?
Any hiking safety advice about {e}?
I'm a beginner hiker. What should I know about {e}?""",
    ),
    _t(
        "cycling",
        """a road bike
bike tire pressure
clipless pedals
a bike chain
cycling in traffic
bike gears
a bike fit
indoor cycling
a bike helmet
a century ride
bike brakes
commuting by bike""",
        """Correct saddle height leaves a slight bend in the knee at the bottom of the stroke.
Clean and lubricate the bike chain every few hundred kilometers.
Tire pressure affects comfort, grip and rolling resistance.
Shift gears before a climb rather than halfway up it.
A professional bike fit can fix knee and back pain on long rides.
Ride predictably in traffic and signal every turn.
A helmet should sit level and snug, two fingers above the eyebrows.
Clipless pedals take practice, so try them first in a quiet parking lot.
Eat and drink regularly on rides longer than two hours.
Disc brakes stop reliably in wet weather.
Indoor cycling trainers make structured workouts easy in winter.
Bike commuting is easier with fenders, lights and a rack.
Cadence around eighty to ninety revolutions a minute is efficient for most riders.
Check brake pads and quick releases before every ride.
A stretched chain wears out the cassette and chainrings faster.
Riding in a group teaches pacing and drafting.""",
        """How do I get better at cycling with {e}?
What cycling advice do you have about {e}?
Can you explain {e} to a new cyclist?
Is {e} worth the money for a recreational cyclist?""",
    ),
    _t(
        "aquarium keeping",
        """the nitrogen cycle
a planted aquarium
aquarium water changes
betta fish
an aquarium filter
algae in the tank
a reef tank
aquarium lighting
neon tetras
a quarantine tank
water hardness
shrimp tanks""",
        """A new aquarium must cycle for several weeks before fish are added.
Beneficial bacteria convert ammonia into nitrite and then into nitrate.
Change ten to twenty percent of the aquarium water every week.
Use a dechlorinator, because tap water chlorine kills helpful bacteria.
Overfeeding is the most common cause of poor water quality.
Bettas need a heated, filtered tank, not a small bowl.
Live plants compete with algae for nutrients and light.
Too many hours of light each day leads to algae blooms.
Neon tetras are schooling fish and should be kept in groups of six or more.
A quarantine tank keeps new fish from bringing disease into the main tank.
Rinse filter media in old tank water so the bacteria survive.
Test kits measure ammonia, nitrite, nitrate and pH.
Reef tanks need stable salinity, temperature and calcium levels.
Shrimp are sensitive to copper, which is found in some medications.
Stocking slowly gives the bacteria time to catch up with the fish load.
Water hardness matters for fish from soft water rivers.""",
        """How do I manage {e} in my aquarium?
What aquarium mistakes do beginners make with {e}?
Can you explain {e} for a new fish keeper?
Why is {e} important in aquarium keeping?""",
    ),
    _t(
        "nutrition",
        """dietary protein
fiber
vitamin D
meal prep
added sugar
healthy fats
hydration
whole grains
iron deficiency
a balanced breakfast
portion sizes
omega 3 fatty acids""",
        """Protein helps repair muscles and keeps you full longer.
Most adults eat far less fiber than the recommended twenty five to thirty grams a day.
Vitamin D is made in the skin from sunlight and is hard to get from food alone.
Whole grains keep the bran and germ, which hold most of the fiber and nutrients.
Added sugar in drinks is one of the easiest things to cut back on.
Unsaturated fats from olive oil, nuts and fish support heart health.
Thirst is a reasonable guide to hydration for most healthy adults.
Iron from plants is absorbed better when eaten with vitamin C.
Filling half the plate with vegetables is a simple rule for balanced meals.
Meal prep on weekends makes healthy weekday eating easier.
Ultra processed foods are easy to overeat because they are engineered to be tasty.
Oily fish such as salmon and sardines provide omega 3 fatty acids.
Smaller plates can reduce portion sizes without feeling restrictive.
Legumes are cheap sources of both protein and fiber.
Reading nutrition labels reveals serving sizes and hidden sugar.
A breakfast with protein and fiber keeps energy steady through the morning.""",
        """How much should I care about {e} in my diet?
What are good nutrition sources of {e}?
Can you explain {e} in simple nutrition terms?
How do I improve {e} in my daily meals?""",
    ),
    _t(
        "sleep",
        """insomnia
a bedtime routine
caffeine and sleep
naps
sleep apnea
blue light from screens
jet lag
a sleep schedule
deep sleep
melatonin
a bedroom environment
sleep debt""",
        """Adults generally need seven to nine hours of sleep a night.
Going to bed and waking at the same time every day stabilizes the body clock.
Caffeine has a half life of about five hours, so afternoon coffee can disrupt sleep.
A cool, dark and quiet bedroom helps people fall asleep faster.
Short naps of twenty minutes refresh without causing grogginess.
Loud snoring with pauses in breathing can be a sign of sleep apnea.
Bright morning light helps reset the internal clock after jet lag.
Screens before bed delay sleep by keeping the brain alert.
Deep sleep is when the body does most of its physical repair.
Melatonin is a timing signal, not a sedative.
If you cannot sleep after twenty minutes, get up and do something calm.
Alcohol may help you fall asleep but fragments sleep later in the night.
Regular exercise improves sleep quality, but not right before bed.
Cognitive behavioral therapy is the first line treatment for chronic insomnia.
Sleep debt builds up over days and is not repaid by one long lie in.
Keeping the bed for sleep strengthens the link between bed and rest.""",
        """How can I deal with {e} to sleep better?
What does sleep research say about {e}?
Is {e} affecting my sleep quality?
Can you give me practical sleep tips about {e}?""",
    ),
    _t(
        "travel planning",
        """a travel itinerary
packing light
travel insurance
cheap flights
a rail pass in Europe
jet lag on long flights
travel documents
a road trip
hostels
travel budget
local transport abroad
a solo trip""",
        """Booking flights on flexible dates often reveals much cheaper fares.
Travel insurance covers medical emergencies and cancelled trips.
Check passport validity, since many countries require six months remaining.
A carry on only trip avoids lost luggage and long waits.
Leave buffer days in an itinerary for delays and rest.
Rail passes pay off only when you take several long train journeys.
Hostels offer private rooms as well as shared dorms.
Notify your bank before traveling so your cards are not blocked.
Local transport cards are usually cheaper than single tickets.
Keep digital copies of travel documents in a secure place.
Shoulder season offers lower prices and fewer crowds than summer.
A daily travel budget should include food, transport and entry fees.
Learning a few phrases in the local language goes a long way.
Road trips need planned fuel stops in remote areas.
Solo travelers should share their travel plans with someone at home.
Packing cubes keep a small bag organized.""",
        """How do I plan {e} for my next trip?
What travel planning tips do you have for {e}?
Is {e} worth it when traveling abroad?
What should I know about {e} before I travel?""",
    ),
    _t(
        "ancient rome",
        """Julius Caesar
the Roman Republic
Roman roads
gladiators
the Colosseum
the Roman Senate
Roman aqueducts
the fall of the Roman Empire
Augustus
Roman legions
Pompeii
Latin""",
        """The Roman Republic was founded around five hundred nine BCE after the last king was expelled.
Julius Caesar crossed the Rubicon in forty nine BCE and started a civil war.
Augustus became the first Roman emperor and ruled for more than forty years.
Roman roads connected the empire and some are still used today.
Aqueducts carried fresh water into Roman cities using gentle slopes.
The Colosseum could hold tens of thousands of spectators for games.
Gladiators were often slaves or prisoners, but some became celebrities.
The Roman Senate advised magistrates and controlled public finances.
Mount Vesuvius buried Pompeii in seventy nine CE, preserving the city.
Roman legions were trained to build camps, roads and bridges as well as fight.
Latin grew into the Romance languages, including Italian, Spanish and French.
The Western Roman Empire fell in four seventy six CE.
Roman concrete has lasted for two thousand years in some structures.
Citizenship was gradually extended to free people across the empire.
The Pax Romana was a long period of relative peace and trade.
Historians still debate why the Roman Empire declined.""",
        """What should I know about {e} in ancient Rome?
Can you explain the history of {e}?
Why was {e} so important to ancient Rome?
How did {e} shape the Roman world?""",
    ),
    _t(
        "weather and climate",
        """thunderstorms
hurricanes
the jet stream
El Nino
humidity
weather fronts
tornadoes
climate change
fog
snowstorms
a weather forecast
monsoons""",
        """Thunderstorms form when warm, moist air rises quickly into cooler air.
Hurricanes draw their energy from warm ocean water above about twenty six degrees Celsius.
The jet stream steers storms and separates cold polar air from warmer air.
El Nino warms the eastern Pacific and shifts weather patterns worldwide.
Relative humidity compares the water vapor in the air to the most it can hold.
A cold front often brings a line of showers followed by cooler, drier air.
Tornadoes usually form from rotating supercell thunderstorms.
Climate describes long term averages, while weather is day to day.
Fog forms when air near the ground cools to its dew point.
Monsoons are seasonal wind shifts that bring heavy rain.
Weather forecasts are most reliable for the next three to five days.
Greenhouse gases trap heat and warm the planet's surface.
Lightning heats the air to temperatures hotter than the surface of the Sun.
Snow needs both cold air and enough moisture.
Barometric pressure falls as a storm approaches.
Sea level rise comes from melting ice and warming water that expands.""",
        """How does {e} form in weather and climate?
Can you explain {e} in simple terms?
What causes {e}, and how do forecasters predict it?
Why does {e} matter for the weather where I live?""",
    ),
    _t(
        "beekeeping",
        """a beehive
the queen bee
varroa mites
honey harvesting
swarming
a bee suit
winter hive care
a Langstroth hive
bee stings
feeding bees sugar syrup
drone bees
a first colony""",
        """A healthy colony has one queen who can lay over a thousand eggs a day.
Varroa mites are the biggest threat to honey bee colonies worldwide.
Bees swarm when the colony is crowded and raises a new queen.
Leave enough honey in the hive for the bees to survive winter.
A smoker calms bees by masking their alarm pheromones.
Langstroth hives use movable frames stacked in boxes.
Worker bees are female, while drones are male and do not sting.
Sugar syrup helps a new colony build comb in spring.
Inspect the hive on warm, calm days when many foragers are out.
A bee suit and gloves give beginners confidence during inspections.
Honey is ready to harvest when most cells are capped with wax.
Bees need a nearby water source, especially in summer.
Mite counts with a sugar roll tell you when to treat.
Joining a local beekeeping club is the fastest way to learn.
Colonies cluster together in winter and shiver to keep warm.
Eggs standing upright in cells show that the queen is laying.""",
        """How do I take care of {e} as a beekeeper?
What should a new beekeeper know about {e}?
Can you explain {e} in beekeeping?
What beekeeping mistakes happen with {e}?""",
    ),
    _t(
        "home plumbing",
        """a leaky faucet
a clogged drain
a running toilet
a water heater
low water pressure
frozen pipes
a garbage disposal
a shut off valve
a P trap
pipe leaks
a sump pump
plumber's tape""",
        """Turn off the water supply before starting any plumbing repair.
A running toilet is often caused by a worn flapper valve.
A plunger with a flange seals better on a toilet drain.
Chemical drain cleaners can damage old pipes, so try a drain snake first.
Plumber's tape wraps clockwise on threads so it tightens with the fitting.
Flush a tank water heater once a year to remove sediment.
Let faucets drip on very cold nights to keep pipes from freezing.
Low water pressure at one faucet is often a clogged aerator.
The P trap under a sink holds water that blocks sewer gas.
Never pour grease down the drain, because it hardens in the pipes.
Every home should have a clearly labeled main shut off valve.
A dripping faucet usually needs a new cartridge or washer.
Sump pumps should be tested before the rainy season.
Garbage disposals jam less when run with plenty of cold water.
Copper, PEX and PVC pipes each need different fittings.
A small leak under a sink can rot the cabinet floor over time.""",
        """How do I fix {e} at home?
Can I handle {e} myself or do I need a plumber?
What plumbing tools do I need for {e}?
What causes {e}, and how do I prevent it?""",
    ),
    _t(
        "painting with watercolor",
        """watercolor paper
wet on wet technique
color mixing
a watercolor palette
washes
masking fluid
brushes for watercolor
painting skies
layering glazes
lifting paint
painting trees
complementary colors""",
        """Cotton watercolor paper handles water far better than cheap wood pulp paper.
Wet on wet painting lets colors bleed into soft edges.
Let each layer dry completely before glazing over it.
Watercolor works from light to dark because white comes from the paper.
A limited palette of three primaries mixes a surprising range of colors.
Masking fluid protects small white areas while you paint around them.
Complementary colors mixed together make rich, natural greys.
Tilt the board to keep a large wash even.
A damp brush can lift paint to create highlights.
Round brushes with a fine point handle most watercolor work.
Stretching paper keeps it from buckling under heavy washes.
Skies are easiest when the paper is evenly wet first.
Too much mixing on the paper makes colors muddy.
Paint trees as masses of light and shadow rather than single leaves.
Granulating pigments settle into the texture of the paper.
Practice swatches teach how each pigment behaves.""",
        """How do I get better at {e} in watercolor painting?
What watercolor mistakes happen with {e}?
Can you explain {e} to a beginner painter?
What supplies do I need for {e}?""",
    ),
    _t(
        "guitar",
        """barre chords
a guitar capo
fingerpicking
guitar strings
strumming patterns
the pentatonic scale
tuning a guitar
guitar calluses
power chords
an acoustic guitar setup
alternate picking
changing chords quickly""",
        """Practicing a little every day builds finger strength faster than one long session.
Barre chords get easier when you press with the side of the index finger.
A capo raises the pitch of every string so you can play open shapes in new keys.
Fingertip calluses form after a few weeks of regular practice.
The minor pentatonic scale is the foundation of most rock and blues solos.
New guitar strings sound bright and need a day to settle in tune.
A metronome makes strumming and picking steadier.
Power chords use only the root and fifth, which suits distorted guitar.
A proper setup lowers the action and makes any guitar easier to play.
Alternate picking moves the pick down and up in strict order.
Practice chord changes slowly, moving all fingers together.
Tune the guitar every time you pick it up.
Fingerpicking patterns assign the thumb to the bass strings.
Relaxed hands play faster and cleaner than tense ones.
Learning songs you love keeps guitar practice motivating.
Recording yourself reveals timing problems you cannot hear while playing.""",
        """How do I learn {e} on the guitar?
What guitar exercises help with {e}?
Can you explain {e} to a beginner guitarist?
Why am I struggling with {e} on guitar?""",
    ),
    _t(
        "geology",
        """plate tectonics
volcanoes
earthquakes
igneous rocks
fossils
the rock cycle
minerals
glaciers
sedimentary layers
geysers
the Earth's mantle
canyons""",
        """Earth's crust is broken into tectonic plates that move a few centimeters a year.
Most earthquakes happen along the boundaries of tectonic plates.
Igneous rocks form when magma or lava cools and hardens.
Sedimentary rocks build up in layers, with the oldest at the bottom.
Fossils are usually found in sedimentary rock.
The rock cycle turns igneous, sedimentary and metamorphic rocks into each other.
Minerals are identified by hardness, luster, streak and crystal shape.
Glaciers carve U shaped valleys as they grind through mountains.
Geysers erupt when underground water is heated by nearby magma.
The mantle flows very slowly, carrying the plates above it.
Rivers cut canyons over millions of years of erosion.
The Mohs scale ranks minerals from soft talc to hard diamond.
Volcanoes along the Pacific Ring of Fire sit above subduction zones.
Radiometric dating measures the age of rocks from radioactive decay.
Metamorphic rocks form under heat and pressure without melting.
Earth is about four and a half billion years old.""",
        """How does {e} work in geology?
Can you explain {e} to a curious student?
What do geologists learn from {e}?
Why is {e} important for understanding the Earth?""",
    ),
    _t(
        "marine biology",
        """coral reefs
octopuses
whales
sea turtles
plankton
sharks
the deep sea
kelp forests
jellyfish
dolphins
tide pools
ocean acidification""",
        """Coral reefs cover a tiny part of the ocean floor but shelter a quarter of marine species.
Octopuses have three hearts and blue blood.
Blue whales are the largest animals known to have ever lived.
Sea turtles return to the beaches where they hatched to lay eggs.
Phytoplankton produce a large share of the oxygen in Earth's atmosphere.
Sharks have existed for more than four hundred million years.
The deep sea is cold, dark and under crushing pressure.
Kelp forests can grow more than half a meter in a single day.
Jellyfish have no brain, heart or bones.
Dolphins use echolocation to find prey in murky water.
Tide pools hold anemones, crabs and sea stars between the tides.
Ocean acidification makes it harder for shellfish to build shells.
Coral bleaching happens when heat stress drives out the algae living in the coral.
Many deep sea animals produce their own light.
Whale songs can travel hundreds of kilometers underwater.
Overfishing removes predators and upsets marine food webs.""",
        """What is fascinating about {e} in marine biology?
Can you explain how {e} survive in the ocean?
Why are {e} important to ocean ecosystems?
What do marine biologists study about {e}?""",
    ),
    _t(
        "yoga",
        """downward dog
sun salutations
a beginner yoga class
breathing in yoga
hot yoga
yoga for back pain
balance poses
a yoga mat
meditation after yoga
hip openers
child's pose
a home yoga practice""",
        """Yoga combines postures, breathing and attention.
Downward dog stretches the hamstrings and strengthens the shoulders.
Sun salutations link a series of poses with the breath.
Bend your knees in forward folds if your hamstrings are tight.
Child's pose is a resting position you can take at any time in class.
Slow breathing through the nose calms the nervous system.
Balance poses improve with a steady gaze on one point.
A non slip mat makes standing poses safer.
Hip openers can help people who sit at a desk all day.
Hot yoga raises the heart rate and requires extra hydration.
Blocks and straps make poses accessible rather than easier.
Gentle yoga can ease some kinds of lower back pain.
A short home practice every day beats one long class a week.
Never force a stretch into pain.
Savasana at the end of class lets the body absorb the practice.
Tell the teacher about injuries before class starts.""",
        """How do I practice {e} safely in yoga?
What are the benefits of {e}?
Can you explain {e} for a yoga beginner?
How often should I do {e} in my yoga routine?""",
    ),
    # Programming topics: also the subjects of the Stack Overflow source.
    _t(
        "python programming",
        """list comprehensions
virtual environments
decorators
generators
dataclasses
asyncio
type hints
f-strings
exception handling
dictionaries
pathlib
mutable default arguments""",
        """List comprehensions build a new list from an iterable in a single readable expression.
A virtual environment isolates a project's Python packages from the system interpreter.
Decorators wrap a function to add behavior without changing its body.
Generators yield values lazily, so they use little memory on large inputs.
Dataclasses generate __init__, __repr__ and __eq__ from annotated fields.
asyncio runs many I/O bound tasks concurrently on a single thread.
Type hints are not enforced at runtime, but mypy checks them statically.
f-strings format values inline and are faster than str.format.
Catch specific exceptions rather than a bare except clause.
Dictionaries keep insertion order since Python 3.7.
pathlib.Path objects replace most string juggling with os.path.
A mutable default argument is created once and shared between calls.
Use with blocks so files are closed even when an exception is raised.
The Global Interpreter Lock lets only one thread run Python bytecode at a time.
enumerate gives both the index and the value while looping.
Use python -m pip so the package installs into the interpreter you expect.""",
        """How do I use {e} correctly in Python?
Why does my Python code with {e} behave unexpectedly?
What are best practices for {e} in Python programming?
Can you explain {e} in Python with an example?""",
        tags="python python-3.x",
        code=(
            "{a} = [{b} * 2 for {b} in range({n}) if {b} % 3 == 0]\nprint({a})",
            "def {a}({b}, items=[]):\n    items.append({b})\n    return items\n\nprint({a}({n}))\nprint({a}({n}))",
            "from dataclasses import dataclass\n\n@dataclass\nclass {C}:\n    {a}: str\n    {b}: int = {n}\n\nprint({C}('x'))",
            "import asyncio\n\nasync def {a}({b}):\n    await asyncio.sleep({b})\n    return {b}\n\nasync def main():\n    print(await asyncio.gather({a}(1), {a}({n})))\n\nasyncio.run(main())",
            "from pathlib import Path\n\n{a} = Path('{f}')\nfor {b} in {a}.glob('*.txt'):\n    print({b}.stem, {b}.stat().st_size)",
            "def {a}({b}):\n    for i in range({b}):\n        yield i * i\n\nprint(sum({a}({n})))",
        ),
    ),
    _t(
        "javascript",
        """promises
async and await
closures
the event loop
array methods like map and filter
the this keyword
fetch requests
let and const
JSON parsing
event listeners
modules and imports
undefined and null""",
        """A promise represents a value that will be available later, or an error.
async functions always return a promise, and await pauses until it settles.
A closure keeps access to variables from the scope where the function was created.
The event loop runs callbacks only after the current call stack is empty.
map returns a new array, while forEach returns undefined.
The value of this depends on how a function is called, not where it is defined.
Arrow functions do not have their own this binding.
fetch only rejects on network failure, so check response.ok for HTTP errors.
let and const are block scoped, unlike var, which is function scoped.
JSON.parse throws a SyntaxError on malformed input, so wrap it in try and catch.
addEventListener can attach several handlers to the same event.
ES modules use import and export and are loaded in strict mode.
Strict equality with three equals signs avoids surprising type coercion.
undefined means a value was never assigned, while null is an intentional empty value.
Array destructuring pulls values out of arrays into named variables.
Promise.all rejects as soon as any of its promises rejects.""",
        """How do I use {e} correctly in JavaScript?
Why does my JavaScript code with {e} not work as expected?
Can you explain {e} in JavaScript with an example?
What are common JavaScript mistakes with {e}?""",
        tags="javascript node.js",
        code=(
            "const {a} = [{n}, 2, 3].map(x => x * 2);\nconsole.log({a});",
            "async function {a}() {{\n  const res = await fetch('/api/{f}');\n  const {b} = await res.json();\n  return {b};\n}}",
            "for (var {a} = 0; {a} < {n}; {a}++) {{\n  setTimeout(() => console.log({a}), 100);\n}}",
            "const {a} = {{\n  {b}: {n},\n  show() {{ return this.{b}; }}\n}};\nconsole.log({a}.show());",
            "document.querySelector('#{f}').addEventListener('click', function {a}(e) {{\n  console.log(e.target, {n});\n}});",
        ),
    ),
    _t(
        "sql databases",
        """a LEFT JOIN
GROUP BY
indexes
transactions
NULL values
window functions
subqueries
foreign keys
a query plan
duplicate rows
date ranges in queries
a many to many table""",
        """A LEFT JOIN keeps every row from the left table, filling missing matches with NULL.
Every selected column must either appear in GROUP BY or be aggregated.
An index speeds up lookups but slows down inserts and updates slightly.
A transaction groups statements so they all succeed or all roll back.
NULL is never equal to anything, so use IS NULL instead of equals NULL.
Window functions compute running totals and ranks without collapsing rows.
A correlated subquery runs once for each row of the outer query.
Foreign keys enforce that a referenced row actually exists.
EXPLAIN shows whether the database uses an index or scans the whole table.
ROW_NUMBER over a partition is a common way to find duplicate rows.
Use a half open range, greater or equal to the start and less than the end, for dates.
A many to many relationship needs a junction table with two foreign keys.
HAVING filters groups after aggregation, while WHERE filters rows before it.
Parameterized queries prevent SQL injection.
COUNT of a column skips NULLs, while COUNT of star counts every row.
Normalization removes redundancy by splitting data into related tables.""",
        """How do I write {e} correctly in SQL?
Why does my SQL query with {e} return the wrong rows?
Can you explain {e} in SQL databases?
What are best practices for {e} in a relational database?""",
        tags="sql postgresql",
        code=(
            "SELECT c.{a}, COUNT(o.id)\nFROM customers c\nLEFT JOIN orders o ON o.customer_id = c.id\nWHERE o.total > {n}\nGROUP BY c.{a};",
            "SELECT {a}, {b}, SUM(amount) OVER (PARTITION BY {a} ORDER BY {b}) AS running\nFROM payments;",
            "CREATE INDEX idx_{a}_{b} ON {f} ({a}, {b});\nEXPLAIN SELECT * FROM {f} WHERE {a} = {n};",
            "SELECT *\nFROM {f}\nWHERE {a} = NULL;",
            "DELETE FROM {f}\nWHERE id NOT IN (SELECT MIN(id) FROM {f} GROUP BY {a}, {b});",
        ),
    ),
    _t(
        "git version control",
        """merge conflicts
git rebase
branches
a detached HEAD
git stash
undoing a commit
the .gitignore file
git cherry-pick
remote repositories
commit messages
git reset
pull requests""",
        """A merge conflict happens when two branches change the same lines differently.
git rebase replays your commits on top of another branch, rewriting their hashes.
Branches in git are just movable pointers to commits.
A detached HEAD means you checked out a commit rather than a branch.
git stash saves uncommitted changes so you can switch branches cleanly.
git revert creates a new commit that undoes an earlier one without rewriting history.
Files already tracked are not ignored by adding them to .gitignore later.
git cherry-pick applies a single commit from another branch.
Never force push a branch that other people have based work on.
A good commit message has a short summary line and an explanation of why.
git reset with the hard flag discards uncommitted changes permanently.
git reflog can recover commits that seem lost after a reset.
git fetch downloads changes without touching your working files.
Pull requests let teammates review changes before they are merged.
Small, focused commits are easier to review and to revert.
git bisect finds the commit that introduced a bug by binary search.""",
        """How do I handle {e} in git?
Why does git behave strangely with {e}?
Can you explain {e} in git version control?
What is the safest way to work with {e} in a team repository?""",
        tags="git github",
        code=(
            "git checkout -b {a}\ngit commit -am \"{b} fix\"\ngit rebase main",
            "git stash\ngit checkout {a}\ngit stash pop",
            "git reset --hard HEAD~{n}\ngit reflog",
            "git cherry-pick {h}\n# error: could not apply {h}... {b}",
            "echo '{f}' >> .gitignore\ngit rm --cached {f}\ngit commit -m \"stop tracking {f}\"",
        ),
    ),
    _t(
        "linux command line",
        """file permissions
grep
pipes and redirection
environment variables
cron jobs
ssh keys
the find command
bash scripts
processes and kill
disk usage
symbolic links
sed and awk""",
        """chmod sets read, write and execute permissions for the owner, group and others.
grep with the -r flag searches recursively through a directory.
A pipe sends the output of one command into the input of the next.
Redirecting with two greater than signs appends instead of overwriting.
Environment variables set with export are inherited by child processes.
Cron runs scheduled jobs with a minimal environment, so use full paths.
ssh-keygen creates a key pair, and the public key goes on the server.
find can search by name, size or modification time.
Start bash scripts with set -euo pipefail to fail fast on errors.
kill sends a signal, and SIGTERM lets a process clean up before exiting.
du -sh shows how much space a directory uses.
A symbolic link points to a path and breaks if the target moves.
sed edits text streams, and awk processes columns of text.
Quoting variables in bash prevents word splitting on spaces.
The PATH variable lists the directories searched for commands.
man pages document nearly every command on the system.""",
        """How do I use {e} on the Linux command line?
Why does my bash command with {e} fail?
Can you explain {e} in Linux with an example?
What are common mistakes with {e} in the shell?""",
        tags="linux bash",
        code=(
            "find /var/log -name '*.log' -mtime +{n} -exec rm {{}} \\;",
            "#!/bin/bash\nset -euo pipefail\nfor {a} in *.csv; do\n  wc -l \"${a}\"\ndone",
            "grep -rn '{b}' ./{f} | sort | uniq -c",
            "*/{n} * * * * /home/{a}/bin/backup.sh >> /tmp/{b}.log 2>&1",
            "chmod 640 {f}\nls -l {f}\nsudo chown {a}:{b} {f}",
        ),
    ),
    _t(
        "docker containers",
        """a Dockerfile
docker volumes
docker compose
container networking
image size
environment variables in containers
multi stage builds
port mapping
container logs
the build cache
running as a non root user
health checks""",
        """Each instruction in a Dockerfile creates a new image layer.
Volumes keep data after a container is removed.
docker compose starts several related containers from one YAML file.
Containers on the same user defined network reach each other by service name.
Multi stage builds copy only the final artifacts into a small runtime image.
Port mapping with -p connects a host port to a container port.
docker logs shows what the container wrote to standard output.
Order Dockerfile steps from least to most frequently changed to use the build cache.
Running as a non root user limits the damage of a compromised container.
A .dockerignore file keeps large or secret files out of the build context.
Alpine based images are small but use musl instead of glibc.
HEALTHCHECK lets Docker know when a service is actually ready.
Environment variables configure a container without rebuilding the image.
localhost inside a container refers to the container itself, not the host.
Pin base image versions so builds are reproducible.
docker exec opens a shell inside a running container for debugging.""",
        """How do I set up {e} with Docker?
Why is my Docker container failing because of {e}?
Can you explain {e} in Docker with an example?
What are best practices for {e} in containers?""",
        tags="docker docker-compose",
        code=(
            "FROM python:3.{n}-slim\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt\nCMD [\"python\", \"{f}\"]",
            "services:\n  {a}:\n    build: .\n    ports:\n      - \"80{n}:8000\"\n  {b}:\n    image: postgres:16",
            "docker run -d -p {n}80:80 -v {a}_data:/data --name {b} nginx",
            "docker build -t {a}:{n} .\ndocker logs -f {b}",
        ),
    ),
    _t(
        "regular expressions",
        """capture groups
lookahead
greedy quantifiers
character classes
anchors
email validation
named groups
backreferences
escaping special characters
multiline mode
word boundaries
non capturing groups""",
        """Parentheses create a capture group that can be referenced later.
A lookahead checks what follows without consuming characters.
Quantifiers are greedy by default, so add a question mark to make them lazy.
A character class in square brackets matches any one of its characters.
The caret and dollar anchors match the start and end of the input or line.
Validating emails fully with a regex is impractical, so keep the pattern simple.
Named groups make long patterns easier to read and maintain.
A backreference matches the same text a group captured earlier.
Escape dots, plus signs and other special characters with a backslash.
Multiline mode makes the anchors match at every line break.
The word boundary assertion matches between a word character and a non word character.
Non capturing groups group without saving the match.
Raw strings in Python avoid doubling every backslash.
Catastrophic backtracking comes from nested quantifiers over the same text.
Test patterns against both matching and non matching examples.
re.fullmatch requires the whole string to match the pattern.""",
        """How do I write {e} in a regular expression?
Why does my regex with {e} match too much?
Can you explain {e} in regular expressions?
What are common regex mistakes with {e}?""",
        tags="regex python",
        code=(
            "import re\n{a} = re.findall(r'(\\d{{{n}}})-(\\w+)', '{f}')\nprint({a})",
            "import re\nm = re.search(r'(?P<{a}>\\w+)@(?P<{b}>[\\w.]+)', text)\nprint(m.group('{a}'))",
            "const {a} = /<.+>/;\nconsole.log('<b>{b}</b>'.match({a}));",
            "import re\nprint(re.sub(r'\\b{b}\\b', '{a}', line, count={n}))",
        ),
    ),
    _t(
        "pandas dataframes",
        """groupby
merging dataframes
missing values
the SettingWithCopyWarning
pivot tables
datetime columns
apply
reading CSV files
the loc and iloc indexers
duplicates in a dataframe
memory usage
string columns""",
        """groupby splits a dataframe into groups, applies a function and combines the results.
pd.merge joins dataframes on columns, much like a SQL join.
isna finds missing values, and fillna or dropna handles them.
The SettingWithCopyWarning appears when assigning to a slice of another dataframe.
pivot_table reshapes long data into a wide summary table.
pd.to_datetime converts strings to timestamps for date arithmetic.
apply with a Python function is slow, so prefer vectorized operations.
read_csv accepts dtype and parse_dates to avoid type guessing.
loc selects by label and iloc selects by integer position.
drop_duplicates removes repeated rows, optionally by a subset of columns.
Converting repeated strings to the category dtype saves memory.
The str accessor applies string methods to a whole column.
Chained indexing can silently modify a copy instead of the original.
value_counts is the quickest way to see a column's distribution.
reset_index turns the index back into a regular column.
Use copy when you need an independent dataframe.""",
        """How do I use {e} in pandas?
Why does my pandas code with {e} give the wrong result?
Can you explain {e} in pandas with an example?
What is the fastest way to handle {e} in a pandas dataframe?""",
        tags="python pandas dataframe",
        code=(
            "import pandas as pd\n{a} = pd.read_csv('{f}')\nprint({a}.groupby('{b}')['amount'].sum())",
            "{a} = df[df['{b}'] > {n}]\n{a}['flag'] = True  # SettingWithCopyWarning",
            "merged = pd.merge({a}, {b}, on='id', how='left')\nprint(merged.shape)",
            "df['{a}'] = pd.to_datetime(df['{b}'])\nprint(df.set_index('{a}').resample('M').size())",
            "df['{a}'] = df['{b}'].apply(lambda x: x * {n})",
        ),
    ),
)

PROGRAMMING_TOPICS: tuple[Topic, ...] = tuple(t for t in TOPICS if t.tags)

# Fragments shared by every topic; they keep records in one topic from reading alike.
OPENERS: tuple[str, ...] = (
    "Good question about {e}.",
    "Here is how I would think about {e}.",
    "{E} is a common stumbling block in {t}, so it is worth taking slowly.",
    "When it comes to {e}, a few principles from {t} cover most situations.",
    "Plenty of people in {t} ask about {e}, and the answer is simpler than it looks.",
    "Let me break down {e} step by step.",
    "The short answer: {e} rewards patience and a few good habits.",
    "{E} makes more sense once you know the basics of {t}.",
    "In {t}, {e} comes up all the time.",
    "There are a couple of things to keep in mind with {e}.",
    "Here are the key points about {e}.",
    "Sure. {E} is a good thing to understand early in {t}.",
)
CLOSERS: tuple[str, ...] = (
    "Start small, keep notes, and adjust as you learn.",
    "With a little practice this becomes second nature.",
    "If something still looks off, change one variable at a time.",
    "Good luck, and enjoy the process.",
    "Those habits will take you a long way.",
    "Once these basics are in place, the rest follows.",
    "Give it a few tries before judging the results.",
    "",
    "",
    "",
)
PREFIXES: tuple[str, ...] = (
    "",
    "",
    "",
    "Quick question. ",
    "Hi! ",
    "I've been reading about {t} lately. ",
    "Beginner here. ",
    "This has been bugging me for a while. ",
    "My friend and I were arguing about this. ",
    "For a project I'm working on: ",
)
FOLLOW_UPS: tuple[str, ...] = (
    "Thanks. What about {e}?",
    "That helps. How does this relate to {e}?",
    "Can you go a bit deeper on {e}?",
    "Interesting. Is {e} something a beginner should worry about?",
    "OK, and what mistakes do people make with {e}?",
    "Makes sense. Could you compare that with {e}?",
)

# Alpaca instructions: (verb, template). The verb comes first so a verb/object table is meaningful.
ALPACA_INSTRUCTIONS: tuple[str, ...] = (
    "Explain {e} to someone new to {t}.",
    "Explain why {e} matters in {t}.",
    "Write a short guide to {e} for a beginner in {t}.",
    "Write a paragraph about {e}.",
    "List some practical tips for {e}.",
    "List the most common mistakes people make with {e}.",
    "Describe how {e} works.",
    "Describe the role of {e} in {t}.",
    "Give advice to someone struggling with {e}.",
    "Give three facts about {e}.",
    "Summarize the key ideas behind {e}.",
    "Compare {e} and {e2}.",
    "Outline a plan for learning about {e}.",
    "Suggest ways to improve at {e}.",
    "Create a checklist for {e}.",
    "Identify the main benefits of understanding {e}.",
    "Explain the difference between {e} and {e2}.",
    "Write a short dialogue between two friends about {e}.",
    "Describe a common misconception about {e}.",
    "Give an example that shows how {e} works in practice.",
    "Summarize what a beginner in {t} should know about {e}.",
    "List questions to ask an expert about {e}.",
    "Create a one week practice plan that involves {e}.",
    "Suggest a simple experiment to learn more about {e}.",
)
ALPACA_WITH_INPUT: tuple[str, ...] = (
    "Summarize the following text about {t}.",
    "Rewrite the following passage in simpler words.",
    "Extract the main advice from the text below.",
    "Turn the following notes on {e} into a short paragraph.",
)

# Varied Alpaca tasks: (template, answer style). Real Alpaca instructions share few words beyond
# their verb, so each task words its object differently; {e} entity, {e2} a second entity, {t} topic.
ALPACA_TASKS: tuple[tuple[str, str], ...] = (
    ("Explain {e} to someone who has never done anything in {t}.", "para"),
    ("Explain why people who are serious about {t} care so much about {e}.", "para"),
    ("Explain what goes wrong when {e} is neglected.", "para"),
    ("Write a short guide to {e} for a complete beginner.", "para"),
    ("Write a persuasive paragraph arguing that {e} deserves more attention.", "para"),
    ("Write a diary entry from someone trying {e} for the first time.", "para"),
    ("Write a product description for a course that teaches {e}.", "para"),
    ("Write two sentences a coach might say about {e}.", "short"),
    ("List the most common mistakes beginners make with {e}.", "list"),
    ("List {n} questions you would ask an expert on {e}.", "list"),
    ("List what you need before starting with {e}.", "list"),
    ("Describe how {e} works, step by step.", "list"),
    ("Describe a typical day for someone who specializes in {e}.", "para"),
    ("Describe the role {e} plays in {t}.", "para"),
    ("Give {n} tips that make {e} easier.", "list"),
    ("Give an analogy that makes {e} easy to picture.", "short"),
    ("Give feedback to a friend whose attempt at {e} failed twice.", "para"),
    ("Summarize the main ideas behind {e} in plain words.", "para"),
    ("Summarize what the research or experience says about {e}.", "para"),
    ("Compare {e} and {e2}.", "compare"),
    ("Compare the costs and benefits of {e} with those of {e2}.", "compare"),
    ("Contrast a careful approach to {e} with a rushed one.", "para"),
    ("Outline a four week plan to get better at {e}.", "list"),
    ("Outline the history of {e} as a teacher might tell it.", "para"),
    ("Suggest {n} ways a busy person could fit {e} into their week.", "list"),
    ("Suggest a name for a club devoted to {e}, and explain it.", "short"),
    ("Create a checklist someone could follow for {e}.", "list"),
    ("Create a quiz question about {e}, with the answer.", "short"),
    ("Identify the biggest risk in {e} and how to reduce it.", "para"),
    ("Identify three signs that {e} is going well.", "list"),
    ("Brainstorm blog post titles about {e}.", "list"),
    ("Generate a catchy slogan for a workshop on {e}.", "short"),
    ("Generate interview questions for a podcast episode on {e}.", "list"),
    ("Propose a simple experiment that tests a claim about {e}.", "para"),
    ("Design a one page handout on {e} for a community center.", "list"),
    ("Name {n} tools or resources that help with {e}.", "list"),
    ("Evaluate the claim that {e} is only for experts.", "para"),
    ("Analyze why {e} confuses so many newcomers to {t}.", "para"),
    ("Predict how {e} might change over the next ten years.", "para"),
    ("Rank the skills involved in {e} from easiest to hardest.", "list"),
    ("Plan a weekend project around {e}.", "list"),
    ("Teach {e} using a short story.", "para"),
    ("Tell me something surprising about {e}.", "short"),
    ("Imagine you are a mentor in {t}: what would you say about {e}?", "para"),
    ("Argue for and against spending money on {e}.", "compare"),
    ("Critique this common advice: just learn {e} by trial and error.", "para"),
    ("Recommend a first step for anyone curious about {e}.", "short"),
    ("Estimate how long it takes to become comfortable with {e}, and explain.", "para"),
    ("Prepare talking points for a five minute talk on {e}.", "list"),
    ("Develop a troubleshooting flowchart, in words, for {e}.", "list"),
    ("Formulate a rule of thumb about {e} and justify it.", "short"),
    ("Classify the tasks involved in {e} as easy, medium or hard.", "list"),
    ("Construct a short dialogue where a student asks about {e}.", "para"),
    ("Pretend you are writing a FAQ entry on {e}.", "para"),
    ("Provide a glossary of terms related to {e}.", "list"),
    ("Draft an email inviting colleagues to a session on {e}.", "para"),
    ("Compose a haiku-like short poem about {e}.", "short"),
    ("Rewrite the idea behind {e} as advice for a child.", "short"),
    ("How would you explain {e} without any jargon?", "para"),
    ("What is the single most useful habit for {e}?", "short"),
    ("Why do experts disagree about {e}?", "para"),
)
# Entity-specific detail attached to an instruction ({f}: a topic fact, lowercase, no final period).
ALPACA_DETAILS: tuple[str, ...] = (
    "Mention that {f}.",
    "Make sure the answer covers the point that {f}.",
    "Keep in mind that {f}.",
    "The reader has already heard that {f}.",
    "Start from the observation that {f}.",
    "Include the fact that {f}.",
    "Say whether it matters that {f}.",
    "Build on this: {f}.",
)
# Context sentences: who the answer is for or where it will be used.
ALPACA_CONTEXTS: tuple[str, ...] = (
    "It is for {a}.", "This will go in a newsletter about {t}.", "My audience is {a}.",
    "I'm preparing a talk at the local library.", "It should fit on an index card.",
    "The readers are volunteers at a community event.", "This is for a school assignment.",
    "Pretend you are talking to {a}.", "I will read it aloud on a podcast.",
    "The answer goes on a poster in a workshop.", "Address it to a skeptical reader.",
    "Assume there is no budget at all.",
)
ALPACA_FORMATS: tuple[str, ...] = (
    "Keep it under {n}0 words.", "Use simple language.", "Use a friendly tone.", "Use bullet points.",
    "Answer in {n} sentences.", "End with a question for the reader.", "Give the answer a title.",
    "Avoid jargon.", "Include one concrete example.", "Mention one common mistake.",
    "Write in the second person.", "Number the points.", "Be brief.", "Use a formal register.",
)
# Tasks that come with an input field holding real content ({inp} kinds: facts paragraph, one fact, notes).
ALPACA_INPUT_TASKS: tuple[tuple[str, str], ...] = (
    ("Summarize the following text about {t}.", "paragraph"),
    ("Rewrite the following passage in simpler words.", "paragraph"),
    ("Extract the main advice from the text below.", "paragraph"),
    ("Turn the following notes on {e} into a short paragraph.", "notes"),
    ("Give the paragraph below a short, descriptive title.", "paragraph"),
    ("Find the claim in this paragraph that a newcomer would find most surprising.", "paragraph"),
    ("Classify each statement below as a tip, a warning or a fact.", "notes"),
    ("Rephrase this sentence so that it sounds more encouraging.", "sentence"),
    ("Write a question that the passage below answers.", "paragraph"),
    ("Shorten the following text to two sentences.", "paragraph"),
    ("Explain the sentence below to a child.", "sentence"),
    ("Edit the notes below into a numbered checklist.", "notes"),
    ("Is the following statement accurate? Explain briefly.", "sentence"),
    ("Add one practical example to the sentence below.", "sentence"),
)

# Degenerate model outputs, for the "repetitive" plant.
REPEAT_LINES: tuple[str, ...] = (
    "I hope this helps!",
    "Let me know if you have any other questions.",
    "This is the answer to your question.",
    "The key is to practice.",
    "It depends on the situation.",
)

# ---------------------------------------------------------------------------------------------- failures

REFUSALS: tuple[str, ...] = (
    "As an AI language model, I cannot provide personal advice about {e}. Please consult a qualified professional.",
    "As an AI language model, I do not have personal experiences with {e}, so I cannot answer that.",
    "I'm sorry, but I cannot help with questions about {e}.",
    "I'm sorry, but I can't assist with that request.",
    "I am unable to provide information on {e}. Is there anything else I can help you with?",
    "I apologize, but as an AI I am not able to give recommendations about {e}.",
    "Unfortunately, I cannot fulfill this request because it goes against my guidelines.",
)
ERRORS: tuple[str, ...] = (
    "Error: the model is overloaded. Please try again later.",
    "Error: rate limit exceeded (429). Retry after 20 seconds.",
    "Traceback (most recent call last):\n  File \"generate.py\", line 88, in <module>\n    out = model.generate(**inputs)\nRuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "Traceback (most recent call last):\n  File \"client.py\", line 41, in request\n    resp.raise_for_status()\nrequests.exceptions.HTTPError: 502 Server Error: Bad Gateway",
    "An error occurred while generating the response. Please regenerate.",
    "network error",
)
TRUNCATION_TAILS: tuple[str, ...] = ("and the", "which means that", "because", "such as", "for example the", "so you", "but if")

PII: tuple[str, ...] = (
    "If you need more help, email me at {name}.{surname}@{domain} and I will reply within a day.",
    "You can call our support line at +1 (415) 555-{n4} on weekdays.",
    "Set the key in your environment, for example export OPENAI_API_KEY=sk-{key}, before running the script.",
    "My personal number is 07700 900{n3} if you want to talk it through.",
    "Contact {name}.{surname}@{domain} or phone 555-{n3}-{n4} for the full notes.",
    "Use the token ghp_{key} to authenticate against the API.",
)
PII_NAMES = ("maria", "john", "wei", "fatima", "lukas", "aiko", "carlos", "emma", "omar", "priya")
PII_SURNAMES = ("lopez", "smith", "chen", "haddad", "becker", "tanaka", "silva", "brown", "khan", "patel")
PII_DOMAINS = ("gmail.com", "example.org", "outlook.com", "company.io", "mail.net")

# ---------------------------------------------------------------------------------------------- non-English
# Per language: (questions, answer sentences) per topic. Real sentences so language ID recognises them.

NON_ENGLISH: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "es": (
        (
            ("¿Cómo puedo preparar una buena paella en casa?", "¿Qué consejos me das para cocinar arroz sin que se pegue?"),
            (
                "Primero hay que sofreír bien la cebolla y el pimiento en aceite de oliva.",
                "El arroz bomba absorbe mucho caldo sin deshacerse.",
                "No conviene remover el arroz una vez que has añadido el caldo.",
                "El azafrán le da el color dorado y un aroma muy especial.",
                "Deja reposar el plato cinco minutos antes de servirlo.",
            ),
        ),
        (
            ("¿Qué necesito para empezar un huerto en mi terraza?", "¿Cada cuánto tiempo debo regar las plantas de tomate?"),
            (
                "Las hortalizas necesitan al menos seis horas de sol al día.",
                "Es mejor regar por la mañana temprano o al atardecer.",
                "Un buen compost mejora mucho la tierra de las macetas.",
                "Las macetas deben tener agujeros para que el agua no se acumule.",
                "Las plantas aromáticas como la albahaca son fáciles de cultivar.",
            ),
        ),
        (
            ("¿Cómo puedo ahorrar dinero cada mes?", "¿Es buena idea invertir en fondos indexados?"),
            (
                "Lo primero es anotar todos los gastos durante un mes completo.",
                "Un fondo de emergencia debería cubrir varios meses de gastos.",
                "Los fondos indexados tienen comisiones bajas y están muy diversificados.",
                "Conviene pagar primero las deudas con el interés más alto.",
                "Automatizar el ahorro el día de cobro ayuda a crear el hábito.",
            ),
        ),
        (
            ("¿Qué puedo ver en el cielo con un telescopio pequeño?", "¿Por qué la Luna cambia de forma cada noche?"),
            (
                "Con un telescopio pequeño se ven los anillos de Saturno y las lunas de Júpiter.",
                "Las fases de la Luna dependen de la parte iluminada que vemos desde la Tierra.",
                "Es mejor observar lejos de las luces de la ciudad.",
                "La galaxia de Andrómeda se puede ver a simple vista en noches muy oscuras.",
                "Conviene dejar que los ojos se acostumbren a la oscuridad durante veinte minutos.",
            ),
        ),
    ),
    "fr": (
        (
            ("Comment réussir une pâte à crêpes sans grumeaux ?", "Quel est le secret d'une bonne sauce béchamel ?"),
            (
                "Il faut verser le lait petit à petit en fouettant sans arrêt.",
                "Laisser reposer la pâte une heure la rend plus souple.",
                "Une pincée de sel relève le goût, même dans une recette sucrée.",
                "Le beurre doit fondre doucement avant d'ajouter la farine.",
                "Une poêle bien chaude donne des crêpes dorées et fines.",
            ),
        ),
        (
            ("Comment entretenir un potager quand on débute ?", "Quand faut-il tailler les rosiers ?"),
            (
                "La plupart des légumes ont besoin de beaucoup de soleil.",
                "Le paillage garde l'humidité du sol et limite les mauvaises herbes.",
                "On taille généralement les rosiers à la fin de l'hiver.",
                "Il vaut mieux arroser abondamment mais moins souvent.",
                "Le compost maison nourrit la terre de manière naturelle.",
            ),
        ),
        (
            ("Comment préparer mon premier semi-marathon ?", "Combien de fois par semaine faut-il courir pour progresser ?"),
            (
                "La plupart des sorties doivent se faire à une allure où l'on peut parler.",
                "Il ne faut pas augmenter le kilométrage trop vite d'une semaine à l'autre.",
                "Les jours de repos sont aussi importants que les entraînements.",
                "De bonnes chaussures de course évitent beaucoup de blessures.",
                "Trois ou quatre sorties par semaine suffisent pour bien progresser.",
            ),
        ),
        (
            ("Comment apprendre à jouer aux échecs plus intelligemment ?", "Pourquoi faut-il roquer tôt dans une partie d'échecs ?"),
            (
                "En début de partie, il faut contrôler le centre et sortir ses pièces.",
                "Le roque met le roi en sécurité et relie les tours.",
                "Résoudre quelques problèmes tactiques chaque jour aide beaucoup.",
                "Avant chaque coup, regardez ce que menace votre adversaire.",
                "En finale, le roi devient une pièce active et forte.",
            ),
        ),
    ),
    "de": (
        (
            ("Wie backe ich ein gutes Sauerteigbrot?", "Warum wird mein Brot immer so flach?"),
            (
                "Ein aktiver Sauerteig sollte sich nach dem Füttern verdoppeln.",
                "Mehl mit einer Küchenwaage abzuwiegen ist viel genauer als mit Tassen.",
                "Der Teig braucht je nach Raumtemperatur unterschiedlich lange zum Gehen.",
                "Dampf in den ersten Minuten hilft dem Brot beim Aufgehen.",
                "Das Brot sollte vor dem Anschneiden vollständig auskühlen.",
            ),
        ),
        (
            ("Wie oft sollte ich das Öl bei meinem Auto wechseln?", "Was bedeutet es, wenn die Bremsen quietschen?"),
            (
                "Moderne Motoren brauchen meist nur alle fünfzehntausend Kilometer einen Ölwechsel.",
                "Quietschende Bremsen deuten oft auf abgenutzte Bremsbeläge hin.",
                "Den Reifendruck sollte man einmal im Monat bei kalten Reifen prüfen.",
                "Eine Autobatterie hält normalerweise drei bis fünf Jahre.",
                "Man sollte den Kühlerdeckel niemals bei heißem Motor öffnen.",
            ),
        ),
        (
            ("Wie plane ich eine Wanderung in den Alpen?", "Welche Ausrüstung brauche ich für eine Tageswanderung?"),
            (
                "Das Wetter in den Bergen kann sich innerhalb einer Stunde ändern.",
                "Man sollte immer mehr Wasser mitnehmen, als man glaubt zu brauchen.",
                "Gute Wanderschuhe sollte man vorher auf kurzen Strecken einlaufen.",
                "Erzählen Sie jemandem, welche Route Sie gehen und wann Sie zurück sind.",
                "Wanderstöcke entlasten die Knie beim Abstieg.",
            ),
        ),
        (
            ("Wie lerne ich am besten Gitarre spielen?", "Warum tun mir beim Gitarrespielen die Finger weh?"),
            (
                "Jeden Tag ein wenig zu üben bringt mehr als eine lange Sitzung pro Woche.",
                "Nach einigen Wochen bilden sich Hornhaut an den Fingerspitzen.",
                "Ein Metronom hilft dabei, gleichmäßig zu spielen.",
                "Barré-Akkorde werden leichter, wenn man mit der Seite des Zeigefingers drückt.",
                "Man sollte die Gitarre vor jedem Üben stimmen.",
            ),
        ),
    ),
    "ko": (
        (
            ("집에서 맛있는 김치찌개를 만드는 방법을 알려주세요.", "볶음밥을 맛있게 만드는 비결이 있나요?"),
            (
                "잘 익은 김치를 사용하면 찌개 맛이 훨씬 깊어집니다.",
                "돼지고기를 먼저 볶으면 국물이 더 진해집니다.",
                "찬밥을 사용하면 볶음밥이 질척거리지 않습니다.",
                "센 불에서 빠르게 볶는 것이 중요합니다.",
                "마지막에 참기름을 조금 넣으면 향이 좋아집니다.",
            ),
        ),
        (
            ("매달 돈을 모으려면 어떻게 해야 하나요?", "비상금은 얼마나 준비해야 하나요?"),
            (
                "먼저 한 달 동안 모든 지출을 기록해 보세요.",
                "비상금은 보통 생활비의 세 달에서 여섯 달 정도가 적당합니다.",
                "월급날 자동으로 저축되도록 설정하면 습관을 만들기 쉽습니다.",
                "이자가 높은 빚부터 먼저 갚는 것이 좋습니다.",
                "인덱스 펀드는 수수료가 낮고 분산 투자가 됩니다.",
            ),
        ),
        (
            ("잠을 잘 자려면 어떤 습관이 필요할까요?", "커피가 수면에 영향을 주나요?"),
            (
                "매일 같은 시간에 자고 일어나는 것이 가장 중요합니다.",
                "오후에 마시는 커피는 밤잠을 방해할 수 있습니다.",
                "침실은 시원하고 어둡고 조용하게 유지하세요.",
                "잠들기 전에 휴대폰 화면을 보지 않는 것이 좋습니다.",
                "낮잠은 이십 분 정도로 짧게 자는 것이 좋습니다.",
            ),
        ),
        (
            ("파이썬을 처음 배우는데 무엇부터 시작해야 하나요?", "파이썬 가상 환경은 왜 사용하나요?"),
            (
                "변수와 조건문, 반복문 같은 기초 문법부터 익히세요.",
                "가상 환경은 프로젝트마다 패키지를 따로 관리하게 해 줍니다.",
                "작은 프로젝트를 직접 만들어 보는 것이 가장 빨리 배우는 방법입니다.",
                "오류 메시지를 꼼꼼히 읽으면 문제를 쉽게 찾을 수 있습니다.",
                "공식 문서는 생각보다 읽기 쉽고 예제가 많습니다.",
            ),
        ),
    ),
    "zh": (
        (
            ("怎样在家做一道好吃的红烧肉？", "炒菜的时候怎样才能不粘锅？"),
            (
                "五花肉先焯水可以去掉腥味。",
                "炒糖色的时候要用小火，不然很容易炒糊。",
                "锅一定要烧热以后再放油。",
                "最后用大火收汁，味道会更浓。",
                "做饭之前先把所有材料切好，会轻松很多。",
            ),
        ),
        (
            ("用小望远镜能看到哪些天体？", "为什么月亮每天晚上的形状都不一样？"),
            (
                "用小望远镜就能看到土星的光环和木星的卫星。",
                "月相的变化取决于我们从地球上看到的被照亮的部分。",
                "观星最好远离城市的灯光。",
                "让眼睛在黑暗中适应二十分钟会看得更清楚。",
                "流星雨是地球穿过彗星留下的碎片时形成的。",
            ),
        ),
        (
            ("刚开始跑步应该注意什么？", "怎样准备第一次半程马拉松？"),
            (
                "大部分训练应该用能够轻松说话的速度来跑。",
                "每周的跑量不要增加得太快。",
                "休息日和训练日同样重要。",
                "一双合适的跑鞋可以减少很多伤病。",
                "比赛开始时要比目标配速稍微慢一点。",
            ),
        ),
        (
            ("学习编程应该从哪种语言开始？", "写代码的时候遇到错误应该怎么办？"),
            (
                "很多人选择从Python开始，因为它的语法比较简单。",
                "仔细阅读错误信息通常能找到问题所在。",
                "每天坚持写一点代码比偶尔写很多更有效。",
                "自己动手做一个小项目是最好的学习方法。",
                "遇到问题时先查官方文档，再去网上搜索。",
            ),
        ),
    ),
    "ja": (
        (
            ("家でおいしいカレーを作るコツを教えてください。", "ご飯を上手に炊くにはどうすればいいですか？"),
            (
                "玉ねぎをじっくり炒めると甘みが出ておいしくなります。",
                "カレーは一晩寝かせると味がなじみます。",
                "お米は炊く前に三十分ほど水に浸けておくとふっくら炊けます。",
                "水の量はお米の量に合わせて正確に量りましょう。",
                "炊き上がったら十分ほど蒸らしてから混ぜてください。",
            ),
        ),
        (
            ("ベランダで野菜を育てるにはどうしたらいいですか？", "トマトの水やりはどのくらいの頻度が良いですか？"),
            (
                "ほとんどの野菜は一日に六時間以上の日光が必要です。",
                "水やりは朝のうちにたっぷりと行うのがおすすめです。",
                "鉢の底には水がたまらないように穴が必要です。",
                "堆肥を混ぜると土がやわらかくなります。",
                "バジルのようなハーブは初心者でも育てやすいです。",
            ),
        ),
        (
            ("チェスが上手になるにはどうすればいいですか？", "キャスリングはいつするべきですか？"),
            (
                "序盤では中央を支配して駒を早く展開することが大切です。",
                "キャスリングをするとキングが安全になり、ルークがつながります。",
                "毎日少しずつ詰めチェスの問題を解くと力がつきます。",
                "相手の狙いを考えてから自分の手を決めましょう。",
                "終盤ではキングも積極的に使う駒になります。",
            ),
        ),
        (
            ("よく眠るためにはどんな習慣が必要ですか？", "寝る前にスマホを見るのは良くないですか？"),
            (
                "毎日同じ時間に寝て同じ時間に起きることが大切です。",
                "寝る前にスマホの画面を見ると脳が覚醒してしまいます。",
                "寝室は涼しく暗く静かに保ちましょう。",
                "午後にコーヒーを飲むと夜の睡眠に影響することがあります。",
                "昼寝は二十分くらいの短いものが効果的です。",
            ),
        ),
    ),
}

# ---------------------------------------------------------------------------------------------- P3
# BigScience P3 shapes: a handful of prompt templates over short texts, one-word targets.

P3_POSITIVE = (
    "{title} is a warm, funny film with a terrific performance by {actor}.",
    "I loved every minute of {title}, and the soundtrack is wonderful.",
    "The story of {title} kept me gripped until the very last scene.",
    "{actor} has never been better, and the script is sharp and clever.",
    "A beautiful, moving picture that I will happily watch again.",
    "The direction is confident and the {n} minutes fly by.",
    "Great cast, great writing, and a genuinely surprising ending.",
    "This is the best thing I have seen at the cinema in {year}.",
    "My whole family enjoyed it, even my teenage kids.",
    "The cinematography alone is worth the price of the ticket.",
    "Funny, tender and smart, it earns every laugh.",
    "I left the theater smiling and recommended it to all my friends.",
)
P3_NEGATIVE = (
    "{title} is a dull, lifeless film that wastes a talented cast.",
    "I was bored after twenty minutes of {title}, and it only got worse.",
    "{actor} looks lost in a role that makes no sense.",
    "The plot is full of holes and the dialogue is painfully clumsy.",
    "Two hours of my life I will never get back.",
    "The jokes fall flat and the pacing drags for all {n} minutes.",
    "Even the special effects look cheap and unfinished.",
    "This is the worst film I have seen in {year}.",
    "I nearly walked out halfway through.",
    "A confused mess with an ending that makes no sense at all.",
    "The acting is wooden and the music is far too loud.",
    "I cannot recommend it to anyone, not even fans of {actor}.",
)
P3_TITLE_A = ("The Silent", "Midnight", "Broken", "Golden", "The Last", "Northern", "Electric", "Hidden", "Crimson", "Distant")
P3_TITLE_B = ("Harbor", "Garden", "Promise", "Summer", "Frontier", "Letters", "River", "Station", "Orchard", "Signal")
P3_ACTORS = ("Anna Keller", "Marcus Reed", "Sofia Marin", "Daniel Okafor", "Lena Novak", "Tom Bradley", "Nina Alvarez", "Hugo Laurent")
P3_PRODUCTS = ("blender", "phone case", "desk lamp", "water bottle", "backpack", "coffee grinder", "keyboard", "tent", "kettle", "headphones")
P3_PRODUCT_POS = (
    "The {p} arrived quickly and works exactly as described.",
    "Solid build quality for the price, and the {p} still looks new after months.",
    "I bought a second {p} as a gift because I like mine so much.",
    "Easy to set up and the {p} does its job every single day.",
    "Battery life on the {p} is better than advertised, about {n} hours for me.",
    "My partner was skeptical but now uses the {p} more than I do.",
    "Packaging was minimal and recyclable, which I appreciate.",
    "Customer service replaced a missing part within {n} hours.",
    "It feels sturdier than the {p} I owned before.",
    "Five stars, I would happily buy from this seller again.",
)
P3_PRODUCT_NEG = (
    "The {p} broke after {n} days and support never answered.",
    "Cheap plastic, and the {p} looks nothing like the photos.",
    "The {p} stopped working within a week, so I returned it.",
    "Do not buy this {p}; it is noisy and poorly made.",
    "The instructions were missing and the app would not pair.",
    "After {n} uses the handle cracked right off.",
    "It smelled of burnt plastic the first time I switched it on.",
    "The seller refused a refund because the box was opened.",
    "Half the features in the listing simply do not exist.",
    "I regret not reading the one star reviews first.",
)
P3_NEWS = {
    "World": (
        "Leaders from {n} countries met in {city} to discuss a new trade agreement.",
        "Thousands marched through {city} demanding electoral reform.",
        "The foreign minister arrived in {city} for talks on the border dispute.",
        "Aid agencies warned of food shortages after floods near {city}.",
        "The United Nations called for a ceasefire after {n} days of clashes.",
        "Voters in the region head to the polls in a closely watched election.",
        "Officials confirmed that {n} prisoners were released under the deal.",
        "Protests spread to a second city as the government imposed a curfew.",
        "Rescue teams in {city} searched collapsed buildings after the earthquake.",
        "The new prime minister named {person} as foreign minister on {day}.",
        "Border crossings near {city} reopened after {n} weeks of closure.",
        "Diplomats expelled from {city} are expected to return home by {day}.",
        "A summit planned for {city} was postponed because of security concerns.",
        "Parliament voted {n} to 40 to extend the state of emergency.",
        "Refugees crossing into the neighboring country now number more than {n} thousand.",
        "The opposition leader was arrested at her home in {city} early on {day}.",
    ),
    "Sports": (
        "{team} beat their rivals {n} to 1 to reach the cup final.",
        "The star striker of {team} will miss {n} weeks with a knee injury.",
        "{team} signed a new goalkeeper ahead of the season opener in {city}.",
        "A late goal gave {team} their first away win in {n} matches.",
        "The veteran captain announced he will retire at the end of the season.",
        "Ticket prices for the derby in {city} have doubled since last year.",
        "The marathon in {city} drew a record {n} thousand runners.",
        "A referee decision in extra time sparked angry protests from the bench.",
        "{team} fired their manager after a run of {n} games without a win.",
        "The tennis final in {city} was suspended because of rain.",
        "An Olympic champion from {city} tested positive for a banned substance.",
        "{team} will play their home games in a temporary stadium next season.",
    ),
    "Business": (
        "Shares of {company} rose {n} percent after strong quarterly earnings.",
        "{company} announced plans to cut {n} hundred jobs in {city}.",
        "The central bank held interest rates steady, citing slowing inflation.",
        "{company} agreed to buy a rival startup for an undisclosed sum.",
        "Oil prices slipped as traders weighed weak demand from factories.",
        "The airline said it would add {n} new routes from {city} next summer.",
        "Retail sales fell for the second month in a row, according to new data.",
        "Investors cheered a surprise dividend increase at {company}.",
        "{company} recalled {n} thousand cars over a faulty airbag sensor.",
        "Unemployment in {city} fell to its lowest level in a decade.",
        "{company} named {person} as its new chief executive on {day}.",
        "Regulators opened an antitrust inquiry into {company}'s pricing.",
    ),
    "Science": (
        "Researchers in {city} reported a new battery chemistry that charges in {n} minutes.",
        "A space probe sent back detailed images of an icy moon.",
        "{company} unveiled a chip that uses {n} percent less power.",
        "Scientists sequenced the genome of a rare deep sea fish.",
        "A new telescope in the desert captured its first images of a distant galaxy.",
        "Engineers tested a robot that can climb walls using tiny suction pads.",
        "A study of {n} thousand patients linked poor sleep to heart disease.",
        "Researchers trained an algorithm to predict floods days in advance.",
        "Astronomers in {city} spotted a comet that will pass close to Earth in {n} years.",
        "A vaccine trial involving {n} thousand volunteers reported promising early results.",
        "{company} launched a satellite to provide internet access to remote villages.",
        "Biologists discovered {n} new species of frog in a remote rainforest.",
        "A startup in {city} built a solar panel that works in low light.",
        "Climate scientists said the past year was among the warmest on record.",
        "Doctors used a 3D printed implant to repair a patient's skull.",
        "A study found that bees can recognize human faces.",
    ),
}
P3_CITIES = ("Geneva", "Nairobi", "Lima", "Oslo", "Seoul", "Madrid", "Toronto", "Cairo", "Hanoi", "Lisbon", "Accra",
              "Bogota", "Jakarta", "Warsaw", "Manila", "Dublin", "Karachi", "Perth", "Santiago", "Tunis")
P3_TEAMS = ("Riverside United", "North City FC", "the Harbor Hawks", "Eastfield Rovers", "the Valley Lions")
P3_COMPANIES = ("Novacorp", "Brightline", "Tessaly Systems", "Orbit Labs", "Kestrel Foods", "Meridian Bank")
P3_BOOLQ = (
    ("{E} is a topic in {t}. {f} {f2}", "Is {e} related to {t}?", "Yes"),
    ("{f} {f2} These sentences come from a guide about {t}.", "Is this passage about {t2}?", "No"),
)

# Extra slot pools: they make each templated P3 text distinct (real P3 inputs are distinct texts; only the
# prompt wrapper and the label set repeat).
P3_SCENES = ("the opening chase", "the wedding", "the courtroom scene", "the final duel", "the flashback",
             "the dinner party", "the storm sequence", "the train ride", "the last phone call", "the heist")
P3_ROLES = ("the detective", "the grandmother", "the young pilot", "the villain", "the lawyer", "the coach",
            "the runaway", "the mayor", "the twin sisters", "the chef")
P3_REVIEW_POS_ADJ = ("unforgettable", "hilarious", "heartbreaking in the best way", "stunning", "perfectly judged")
P3_REVIEW_NEG_ADJ = ("baffling", "painfully slow", "unintentionally funny", "forgettable", "badly edited")
P3_DIRECTORS = ("Ruth Ames", "Kenji Mori", "Paolo Ferri", "Ida Holm", "Samuel Pike", "Aisha Bello", "Viktor Lind")
P3_COLORS = ("black", "white", "blue", "red", "green", "grey", "silver", "orange")
P3_BRANDS = ("Lumo", "Arctis", "Vendi", "Korra", "Pinecrest", "Halvo", "Zephyr", "Nordby")
P3_WHEN = ("last spring", "for my birthday", "on sale", "two months ago", "for our camping trip",
           "after reading the reviews", "as a replacement", "for my office")
P3_PEOPLE = ("Maria Duarte", "James Okoye", "Li Wen", "Anders Berg", "Fatima Zahra", "Paul Mercier", "Yuki Sato",
             "Rahul Mehta", "Elena Popescu", "Tomás Rivera")
P3_AGENCIES = ("Reuters", "AP", "AFP")
P3_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
P3_NEWS_LEAD = {
    "World": "{person}, a senior diplomat, said on {day} that talks would resume within {n} days.",
    "Sports": "Coach {person} said on {day} that the squad had trained twice a day for {n} days.",
    "Business": "Analyst {person} said on {day} that revenue could grow by {n} percent next year.",
    "Science": "Lead author {person} said on {day} that the team had worked on the project for {n} months.",
}

# ---------------------------------------------------------------------------------------------- prompts
# Prompts are composed from several slots (context, entity, question frame, constraint, audience, tail) so
# that unplanted prompts are distinct texts, not a few templates repeated: real users give context.

# Per topic: first-person circumstances a user mentions before asking (no entity slot, so they combine
# with every entity of the topic). {n} is a small number.
SITUATIONS: dict[str, tuple[str, ...]] = {
    "cooking": (
        "I cook for a family of {n} on a single induction hob.",
        "My kitchen has one decent knife and a very old gas stove.",
        "I'm hosting a dinner party for {n} friends this Saturday.",
        "My partner is vegetarian, so I usually cook two versions of everything.",
        "Last week I burned the bottom of my pan and the whole flat smelled of smoke.",
        "I've started batch cooking on Sundays to save time during the week.",
    ),
    "baking": (
        "I bake at high altitude, about {n} hundred meters above sea level.",
        "My oven is a cheap countertop model with no fan setting.",
        "I'm baking for a school bake sale in {n} days.",
        "My kitchen is cold in winter, around sixteen degrees.",
        "I switched to whole wheat flour recently and everything turns out heavier.",
        "My grandmother's recipe only lists ingredients in cups and spoons.",
    ),
    "astronomy": (
        "I live in a city where I can only see a handful of stars at night.",
        "My kids got a small refractor telescope for their birthday.",
        "We're going camping in a dark sky park next month.",
        "I watched a documentary last night and now I have a lot of questions.",
        "I've been using a stargazing app on my phone for about {n} weeks.",
        "Clouds ruin most of my observing nights here on the coast.",
    ),
    "gardening": (
        "Our back garden has heavy clay soil that stays wet until June.",
        "I only have a north facing balcony with about {n} hours of sun.",
        "We had a late frost this spring and lost half the seedlings.",
        "I just moved into a house with a neglected, overgrown yard.",
        "Slugs have been eating everything in my beds at night.",
        "I'm trying to garden without any chemical sprays this year.",
    ),
    "personal finance": (
        "I'm {n} and just started my first full time job.",
        "My partner and I are trying to combine our finances after the wedding.",
        "I get paid irregularly as a freelance designer.",
        "We have about {n} thousand dollars saved and no clear plan for it.",
        "I lost my job last year and had to live on savings for a while.",
        "My parents never talked about money, so I'm learning from scratch.",
    ),
    "car repair": (
        "My car is a {n} year old hatchback with high mileage.",
        "I've never done any work on a car but I have a basic socket set.",
        "The nearest garage quoted me a price that seems way too high.",
        "I park on the street, so I can only work on the car at the curb.",
        "There's a new noise from the front left wheel when I brake.",
        "I drive about {n} kilometers a day on the highway to work.",
    ),
    "chess": (
        "My online rating has been stuck around {n} hundred for months.",
        "I play blitz at lunch with colleagues and lose most games.",
        "I'm preparing for my first over the board club tournament.",
        "My son just joined the school chess club and asks me questions I can't answer.",
        "I keep losing games in the middlegame after a decent opening.",
        "I've been doing tactics puzzles every morning for {n} weeks.",
    ),
    "music theory": (
        "I've played piano by ear for years but never learned any theory.",
        "I'm writing songs for my band and they all sound the same.",
        "My music exam is in {n} weeks and the theory part worries me.",
        "I produce electronic music and mostly work in a piano roll.",
        "I sing in a community choir and want to read the scores better.",
        "My teacher keeps mentioning ideas I only half understand.",
    ),
    "photography": (
        "I just bought a used mirrorless camera with a kit lens.",
        "Most of my photos are of my kids, who never sit still.",
        "I'm shooting a friend's small wedding in {n} weeks.",
        "I only have my phone camera and a cheap tripod.",
        "My indoor photos always look grainy and yellow.",
        "I'm going on a trip to the mountains and want to bring back good shots.",
    ),
    "running": (
        "I started running {n} months ago after a long break from sport.",
        "I'm in my fifties and my knees are not what they used to be.",
        "I can only run early in the morning before work.",
        "My running club has a race coming up in {n} weeks.",
        "I live somewhere very hilly, so flat routes are hard to find.",
        "I got injured last season and I'm nervous about it happening again.",
    ),
    "dog training": (
        "We adopted a {n} year old rescue dog last month.",
        "Our puppy is a very energetic border collie mix.",
        "I live in a busy city apartment with thin walls.",
        "My dog behaves perfectly at home and forgets everything outside.",
        "We have two small children and a nervous dog.",
        "I work from home, so the dog is with me all day.",
    ),
    "home coffee brewing": (
        "I drink about {n} cups of coffee a day and want them to taste better.",
        "I just bought beans from a local roaster and they taste sour at home.",
        "My budget for new coffee gear is small.",
        "The tap water where I live is very hard.",
        "I've been drinking instant coffee for years and want to upgrade.",
        "My partner likes it strong and I like it mild, so we argue every morning.",
    ),
    "woodworking": (
        "I have a small garage workshop and mostly hand tools.",
        "I'm building a bookshelf for my daughter's room.",
        "My first project, a simple stool, came out wobbly.",
        "I inherited my grandfather's old tools and want to use them.",
        "I can only make noise in the workshop on weekends.",
        "I'm working with cheap pine from the hardware store.",
    ),
    "birdwatching": (
        "I just put up a feeder outside my kitchen window.",
        "We live near a lake that gets a lot of visiting birds in autumn.",
        "I've been birding for about {n} months and keep a simple list.",
        "My eyesight isn't great, so I rely a lot on sounds.",
        "I'm going on a birding trip to the coast next spring.",
        "My kids want to join me on morning walks to spot birds.",
    ),
    "knitting": (
        "I learned to knit from videos {n} weeks ago.",
        "My tension is all over the place and my rows look uneven.",
        "I want to knit a gift for my sister's birthday next month.",
        "I only have cheap acrylic yarn at the moment.",
        "I knit on the train during my commute.",
        "My mother knits continental style and I knit English style.",
    ),
    "hiking": (
        "I'm planning a trip to the mountains with two friends this summer.",
        "I've only done short walks in parks until now.",
        "The trail we want to do climbs about {n} hundred meters.",
        "I hike alone most of the time.",
        "My old boots gave me blisters on the last trip.",
        "We're bringing our twelve year old on her first real hike.",
    ),
    "cycling": (
        "I commute {n} kilometers each way through city traffic.",
        "I just bought a secondhand road bike online.",
        "My knees ache after longer rides.",
        "I'm training for a charity ride later this year.",
        "Where I live it rains most days from October to March.",
        "I ride with a group on Sunday mornings and struggle to keep up.",
    ),
    "aquarium keeping": (
        "I set up my first tank, about {n} liters, three weeks ago.",
        "My tap water has a very high pH.",
        "Two of my fish died this week and I don't know why.",
        "My kids won a goldfish at a fair and now we need a proper setup.",
        "I'm going on holiday for two weeks and worry about the tank.",
        "The water in my tank has turned slightly cloudy.",
    ),
    "nutrition": (
        "I'm trying to eat better after my last checkup.",
        "I work night shifts, so my meals are at odd times.",
        "I've been vegetarian for {n} years.",
        "I train at the gym four times a week.",
        "I have a very small food budget as a student.",
        "My doctor said my blood work was borderline on a few things.",
    ),
    "sleep": (
        "I've been waking up at around three every night for {n} weeks.",
        "I work rotating shifts at a hospital.",
        "We have a newborn and sleep is chaotic.",
        "I drink a lot of coffee to get through the afternoon.",
        "My partner snores and I lie awake for hours.",
        "I scroll on my phone in bed most nights.",
    ),
    "travel planning": (
        "I'm planning a {n} week trip with a fixed budget.",
        "It will be my first time traveling abroad on my own.",
        "We're traveling with a toddler for the first time.",
        "I only have a carry on bag and want to keep it that way.",
        "I booked the flights but nothing else yet.",
        "I travel for work a lot and want my holidays to be easier.",
    ),
    "ancient rome": (
        "I'm reading a novel set in the late Republic.",
        "My daughter has a school project on Rome due in {n} days.",
        "We're visiting Rome next spring and I want to understand what we'll see.",
        "I watched a series about the empire and want to know what was accurate.",
        "I'm teaching an introductory history class this term.",
        "I studied Latin at school but forgot most of the history.",
    ),
    "weather and climate": (
        "We had a strange storm here yesterday afternoon.",
        "I'm a pilot in training and weather is part of the exam.",
        "Our town floods every few years and people argue about why.",
        "I check the forecast every morning before cycling to work.",
        "My students keep asking me about the weather on the news.",
        "I moved from a dry climate to a very humid one.",
    ),
    "beekeeping": (
        "I got my first package of bees {n} weeks ago.",
        "My hive is in a small urban backyard next to neighbors.",
        "Our winters are long and cold here.",
        "I inspected the hive last weekend and something looked off.",
        "I'm taking a beginner course at the local beekeeping association.",
        "My neighbor is nervous about the bees in my garden.",
    ),
    "home plumbing": (
        "I rent an old flat and the landlord is slow to fix things.",
        "The house was built in the sixties and the pipes are original.",
        "I've never held a pipe wrench before.",
        "We have a basement that gets damp every spring.",
        "The problem started after a very cold night last week.",
        "I'd like to avoid calling a plumber for something small.",
    ),
    "painting with watercolor": (
        "I took up watercolor {n} months ago as a way to relax.",
        "My paintings keep turning muddy and overworked.",
        "I paint at the kitchen table in the evenings.",
        "I'm using a cheap student set for now.",
        "I want to paint postcards of my travels.",
        "My teacher says my washes are too timid.",
    ),
    "guitar": (
        "I've been playing guitar for about {n} months.",
        "I'm self taught from videos and probably have bad habits.",
        "My fingers hurt after ten minutes of practice.",
        "I want to play songs around the campfire this summer.",
        "I have an old acoustic guitar that has been in the attic for years.",
        "My band needs a second guitarist and I volunteered.",
    ),
    "geology": (
        "I collect rocks on beach walks with my kids.",
        "We're planning a road trip through some national parks.",
        "I'm studying for an introductory earth science exam.",
        "We felt a small earthquake here last week.",
        "I found something that looks like a fossil in my garden.",
        "I'm a hiker who wants to understand the landscapes I walk through.",
    ),
    "marine biology": (
        "I'm going snorkeling for the first time next month.",
        "My son wants to be a marine biologist when he grows up.",
        "We visited an aquarium last weekend and I left curious.",
        "I live near the coast and walk on the beach every day.",
        "I'm writing a short article for a local nature newsletter.",
        "I just finished a documentary series about the oceans.",
    ),
    "yoga": (
        "I sit at a desk for about {n} hours a day.",
        "I started yoga to help with stress at work.",
        "My hamstrings are very tight from years of running.",
        "I practice at home with online videos.",
        "I'm recovering from a minor back injury.",
        "I'm in my sixties and new to any kind of stretching.",
    ),
    "python programming": (
        "I'm a data analyst moving from spreadsheets to Python.",
        "Our team just upgraded from Python 3.8 to 3.12.",
        "I'm writing a small script to clean up files on a shared drive.",
        "I learned Java first, so some Python idioms feel strange.",
        "I maintain an old code base that nobody has touched in years.",
        "I'm preparing for a coding interview in {n} days.",
    ),
    "javascript": (
        "I'm building my first single page app without a framework.",
        "I come from a Python background and JavaScript surprises me.",
        "Our frontend is an old jQuery code base we're slowly replacing.",
        "I'm writing a browser extension for my own use.",
        "I'm a designer learning to code the prototypes myself.",
        "My Node service started behaving strangely under load.",
    ),
    "sql databases": (
        "Our reporting queries have become slow as the tables grew.",
        "I'm a business analyst who writes SQL against a Postgres replica.",
        "We're migrating from MySQL to Postgres this quarter.",
        "I inherited a schema with no documentation.",
        "The orders table has about {n} million rows now.",
        "I'm learning SQL for a new job that starts next month.",
    ),
    "git version control": (
        "Our team of {n} developers just moved from SVN to git.",
        "I mostly work alone and use git as a backup.",
        "I messed up my local branch and I'm afraid to push.",
        "My company requires a clean linear history on main.",
        "I'm contributing to an open source project for the first time.",
        "I use git from the command line and not from an editor.",
    ),
    "linux command line": (
        "I just got access to a Linux server at work.",
        "I switched my laptop from Windows to Ubuntu last week.",
        "I run a small web server on a cheap VPS.",
        "I want to automate a few chores on my home server.",
        "I'm a researcher processing data files on a cluster.",
        "My shell scripts work on my machine but not on the server.",
    ),
    "docker containers": (
        "We're containerizing an old Django app for the first time.",
        "Our CI builds take about {n} minutes and most of it is Docker.",
        "I run a few services on a home server with Docker.",
        "I'm on a Mac with an ARM chip and the images are built for x86.",
        "Our security team flagged our images in an audit.",
        "I'm new to containers and mostly copy examples from blog posts.",
    ),
    "regular expressions": (
        "I'm cleaning messy data exported from an old CRM.",
        "I need to parse log files from several different services.",
        "Regex has always looked like line noise to me.",
        "I'm writing validation rules for a signup form.",
        "I use regex search and replace in my editor all the time.",
        "Our pattern works in Python but not in JavaScript.",
    ),
    "pandas dataframes": (
        "I'm moving an analysis from Excel to pandas.",
        "My dataframe has about {n} million rows and the laptop struggles.",
        "I get CSV exports from a vendor every week in a slightly different shape.",
        "I'm a scientist analyzing lab measurements in a notebook.",
        "My code works but I'm told it's not idiomatic pandas.",
        "I'm preparing a report for my manager by Friday.",
    ),
}

# Question frames usable with any entity of any topic ({e} entity, {t} topic, {a} audience).
ASK_FRAMES: tuple[str, ...] = (
    "What do most people get wrong about {e}?",
    "Where should I start with {e}?",
    "What's the most useful thing to understand about {e}?",
    "Can you give me a clear explanation of {e}?",
    "How would you explain {e} to {a}?",
    "Which mistakes with {e} are worth avoiding early on?",
    "Is {e} as complicated as it sounds?",
    "What questions should I be asking about {e}?",
    "How do experienced people in {t} think about {e}?",
    "Could you break down {e} step by step?",
    "What would you tell a friend who is curious about {e}?",
    "Where do beginners usually go wrong with {e}?",
    "What are the trade-offs I should know about with {e}?",
    "Why does {e} matter so much in {t}?",
    "What's a good mental model for {e}?",
    "Which resources would you recommend for learning about {e}?",
    "What's one thing about {e} you wish you had known sooner?",
    "How much does {e} really matter for someone like me?",
)
# Clauses that narrow a question ("..., {c}?").
CONSTRAINTS: tuple[str, ...] = (
    "without spending a lot of money",
    "with only the basic equipment I already have",
    "in the time I have after work",
    "before the end of the month",
    "as a complete beginner",
    "without getting overwhelmed by details",
    "on weekends only",
    "while juggling a full time job",
    "with two small kids around",
    "in a small apartment",
    "on a tight budget",
    "at my age",
    "without relying on expensive courses",
    "if I only have about {n} minutes a day",
    "without making things worse",
    "in a way I can explain to others",
)
AUDIENCES: tuple[str, ...] = (
    "my {n} year old nephew", "a colleague who has never tried {t}", "my book club", "a class of ten year olds",
    "my retired father", "a group of new volunteers", "my teenage daughter", "a friend who thinks {t} is boring",
    "someone with no background at all", "my grandmother", "a new coworker", "a room full of skeptics",
)
# Sentences that cite a topic fact as context ({f}: the fact with a lowercase first letter).
FACT_LEADS: tuple[str, ...] = (
    "I read somewhere that {f}",
    "A friend told me that {f}",
    "According to a video I watched, {f}",
    "My instructor mentioned that {f}",
    "I keep hearing that {f}",
    "A forum post claimed that {f}",
)
FACT_CHECKS: tuple[str, ...] = (
    "Is that actually true?", "Does that apply here?", "How much does that matter?", "I'm not sure I believe it.",
    "Can you confirm that?", "",
)
ASK_TAILS: tuple[str, ...] = (
    "Please keep the answer short.", "A numbered list would be ideal.", "Thanks in advance!",
    "I'd appreciate an honest answer.", "Explain it like I'm new to this.", "Include the reasoning, not just the steps.",
    "Any help is welcome.", "Be as specific as you can.", "", "", "", "", "",
)
# Alpaca-style tails after the instruction: who it is for, or how long it should be.
ALPACA_TAILS: tuple[str, ...] = (
    " Keep it under {n}0 words.", " Write it for {a}.", " Use simple language.", " Use a friendly tone.",
    " Focus on practical advice.", " Assume the reader is {a}.", " Include one concrete example.",
    " Mention one common mistake.", "", "", "",
)

# Stack Overflow titles: a programming entity plus a concrete symptom or goal.
SO_TITLES: tuple[str, ...] = (
    "{E} gives the wrong result after upgrading to version {v}",
    "Why is {e} so slow on a {n}k row input?",
    "{E} works locally but fails in CI",
    "Unexpected output from {e} when the input is empty",
    "How to combine {e} with {e2}?",
    "{E} behaves differently on Windows and Linux",
    "Is there a cleaner way to use {e} here?",
    "Strange error when using {e} together with {e2}",
    "{E}: what am I missing?",
    "How do I test code that relies on {e}?",
    "{E} silently ignores part of my input",
    "Best practice for {e} in a large project?",
)
