"""Spoken commands to a voice-controlled computer, from a small random grammar.

    sentences = generate(5000, seed=0)   # 5000 distinct sentences, the same for the same seed

Output is already normalized: lowercase letters, apostrophes and single spaces, numbers and
times spoken as words ("wake me up at seven thirty a m"). A few hundred words in all, many
tens of thousands of distinct sentences, so a model can learn the vocabulary from a few
thousand utterances while dev and test still get sentences it has never heard.
"""

from __future__ import annotations

import random

from asr.text.normalize import number_to_words as number_words  # the normalizer's own spelling of numbers

# --------------------------------------------------------------------------- word lists

ROOMS = ["kitchen", "bedroom", "living room", "bathroom", "office", "hallway", "garage", "dining room",
         "basement", "kids room", "guest room", "porch", "garden", "attic", "study", "laundry room"]
LIGHTS = ["lights", "light", "lamp", "ceiling light", "desk lamp", "floor lamp", "night light", "lamps"]
DEVICES = ["tv", "radio", "fan", "heater", "air conditioner", "coffee machine", "dishwasher",
           "washing machine", "oven", "kettle", "speaker", "printer", "vacuum", "computer"]
GENRES = ["jazz", "rock", "classical", "pop", "country", "blues", "hip hop", "folk", "reggae", "soul",
          "metal", "piano", "relaxing", "dance", "acoustic", "workout", "sleep", "party"]
PLAYLISTS = ["morning", "workout", "dinner", "road trip", "favorites", "chill", "focus", "summer",
             "running", "study", "sunday", "late night"]
MEDIA = ["music", "song", "track", "album", "playlist", "podcast", "radio", "audiobook"]
CITIES = ["london", "paris", "berlin", "tokyo", "new york", "chicago", "boston", "seattle", "denver",
          "madrid", "rome", "sydney", "toronto", "dublin", "miami", "dallas", "austin", "vienna",
          "oslo", "cairo", "moscow", "delhi", "lima", "houston", "atlanta", "phoenix", "portland"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WHEN = ["today", "tomorrow", "tonight", "this morning", "this afternoon", "this evening",
        "this weekend", "next week", "tomorrow morning", "tomorrow night"]
PEOPLE = ["mom", "dad", "john", "sarah", "mike", "emma", "david", "lisa", "james", "anna", "peter",
          "maria", "tom", "kate", "alex", "grandma", "grandpa", "my sister", "my brother", "my boss",
          "the office", "chris", "laura", "daniel", "sophie", "ben", "olivia", "sam"]
PHRASES = ["i'll be late", "i'm on my way", "see you soon", "call me back", "running ten minutes late",
           "dinner is ready", "happy birthday", "i love you", "thank you so much", "i'm almost home",
           "don't forget the milk", "let's meet at noon", "the meeting is cancelled", "good night",
           "can you pick me up", "i'll call you later", "i'm at the store", "where are you",
           "we need more coffee", "the door is open", "have a nice day", "see you tomorrow",
           "i can't make it", "the kids are asleep", "how was your day", "good luck today"]
PLACES = ["the airport", "the station", "work", "home", "the nearest gas station", "the hospital",
          "the library", "the park", "the mall", "the beach", "the museum", "the office", "school",
          "the nearest pharmacy", "the closest coffee shop", "the train station", "the city center",
          "the bank", "the gym", "the post office", "the supermarket", "the bus stop", "downtown",
          "the stadium", "the zoo", "the harbor"]
NEARBY = ["coffee shop", "restaurant", "gas station", "pharmacy", "hotel", "pizza place", "bakery",
          "parking lot", "hospital", "bookstore", "cinema", "supermarket", "bank", "taxi", "car wash"]
TASKS = ["call the dentist", "buy milk", "take out the trash", "water the plants", "pay the rent",
         "feed the cat", "walk the dog", "check the oven", "pick up the kids", "send the report",
         "book a table", "call mom", "take my medicine", "charge my phone", "lock the door",
         "renew my passport", "clean the kitchen", "go to the gym", "buy a present", "back up my computer"]
ITEMS = ["milk", "eggs", "bread", "butter", "coffee", "apples", "bananas", "cheese", "rice", "pasta",
         "tomatoes", "onions", "chicken", "orange juice", "yogurt", "sugar", "tea", "potatoes", "soap",
         "paper towels", "batteries", "cereal"]
LISTS = ["shopping", "grocery", "to do", "packing", "birthday", "work"]
DURATION_UNITS = ["second", "minute", "hour"]
TIMER_NAMES = ["pasta", "egg", "laundry", "pizza", "tea", "cake", "rice", "workout", "nap", "oven"]
ALARM_WORDS = ["wake me up", "set an alarm", "set my alarm", "i need to get up", "set a wake up alarm"]
WAKE = ["", "", "", "", "hey computer ", "computer ", "okay computer "]
POLITE = ["", "", "", "please ", "could you ", "can you "]  # before requests only, not before questions
POLITE_END = ["", "", "", "", " please", " now", " for me"]
QUESTION_WORDS = {"what", "what's", "how", "will", "do", "did", "is", "are", "when", "where", "who"}


def _time(rng: random.Random) -> str:
    """A clock time as spoken: 'seven thirty a m', 'half past six', 'noon'."""
    hour = rng.randint(1, 12)
    h = number_words(hour)
    kind = rng.random()
    if kind < 0.06:
        return rng.choice(["noon", "midnight"])
    if kind < 0.2:
        return f"{h} o'clock" + rng.choice(["", "", " in the morning", " in the evening", " at night"])
    if kind < 0.3:
        return rng.choice(["half past", "quarter past", "quarter to", "ten past", "twenty to"]) + " " + h
    minute = rng.choice([5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, rng.randint(1, 59)])
    m = ("oh " + number_words(minute)) if minute < 10 else number_words(minute)
    return f"{h} {m}" + rng.choice([" a m", " p m", " a m", " p m", ""])


def _duration(rng: random.Random) -> str:
    unit = rng.choice(DURATION_UNITS)
    kind = rng.random()
    if unit == "hour" and kind < 0.3:
        return rng.choice(["an hour", "half an hour", "an hour and a half", "two and a half hours"])
    if unit == "hour" and kind < 0.5:
        return f"one hour and {number_words(rng.choice([5, 10, 15, 20, 30, 45]))} minutes"
    n = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 35, 40, 45, 50, 60, 90,
                    rng.randint(2, 99)]) if unit != "hour" else rng.randint(1, 12)
    if n == 1:
        return ("a " if unit != "hour" else "an ") + unit
    return f"{number_words(n)} {unit}s"


def _room(rng: random.Random) -> str:
    return rng.choice(ROOMS)


def _lights(rng: random.Random) -> str:
    r, thing = _room(rng), rng.choice(LIGHTS)
    onoff = rng.choice(["on", "off"])
    pct = number_words(rng.choice(range(10, 101, 10)) if rng.random() < 0.8 else rng.randint(1, 99))
    return rng.choice([
        f"turn {onoff} the {thing} in the {r}",
        f"turn {onoff} the {r} {thing}",
        f"switch {onoff} the {r} {thing}",
        f"turn the {r} {thing} {onoff}",
        f"dim the {r} {thing}",
        f"dim the {thing} in the {r} to {pct} percent",
        f"set the {r} lights to {pct} percent",
        f"make the {r} lights {rng.choice(['brighter', 'darker', 'warmer', 'cooler'])}",
        f"change the {r} lights to {rng.choice(['red', 'blue', 'green', 'white', 'yellow', 'purple', 'orange'])}",
        f"are the {r} lights on",
        f"turn {onoff} all the lights",
        f"turn {onoff} the {rng.choice(DEVICES)}",
        f"turn {onoff} the {rng.choice(DEVICES)} in the {r}",
        f"is the {rng.choice(DEVICES)} {onoff}",
    ])


def _timer(rng: random.Random) -> str:
    d, name = _duration(rng), rng.choice(TIMER_NAMES)
    n = rng.randint(2, 60)
    return rng.choice([
        f"set a timer for {d}",
        f"set a {name} timer for {d}",
        f"start a timer for {d}",
        f"set a {number_words(n)} minute timer",
        f"timer for {d}",
        f"how much time is left on the {name} timer",
        "how much time is left on my timer",
        f"cancel the {name} timer",
        f"{rng.choice(['cancel', 'stop', 'pause', 'resume'])} the timer",
        f"add {d} to the timer",
        f"remind me in {d} to {rng.choice(TASKS)}",
    ])


def _alarm(rng: random.Random) -> str:
    t, day = _time(rng), rng.choice(DAYS + ["tomorrow", "every day", "on weekdays"])
    return rng.choice([
        f"{rng.choice(ALARM_WORDS)} at {t}",
        f"{rng.choice(ALARM_WORDS)} at {t} {day}",
        f"set an alarm for {t}",
        f"set an alarm for {t} on {rng.choice(DAYS)}",
        f"snooze for {number_words(rng.randint(2, 30))} minutes",
        f"{rng.choice(['turn off', 'cancel', 'delete'])} my alarm for {t}",
        f"{rng.choice(['turn off', 'cancel', 'snooze', 'stop'])} the alarm",
        "what time is my alarm set for",
        f"change my alarm to {t}",
    ])


def _music(rng: random.Random) -> str:
    g, r, m = rng.choice(GENRES), _room(rng), rng.choice(MEDIA)
    level = number_words(rng.randint(0, 10))
    return rng.choice([
        f"play some {g} music",
        f"play {g} music in the {r}",
        f"play my {rng.choice(PLAYLISTS)} playlist",
        f"shuffle my {rng.choice(PLAYLISTS)} playlist",
        f"{rng.choice(['pause', 'stop', 'resume', 'restart'])} the {m}",
        f"{rng.choice(['skip', 'repeat', 'replay'])} this {rng.choice(['song', 'track'])}",
        f"play the {rng.choice(['next', 'previous', 'last'])} {rng.choice(['song', 'track', 'episode'])}",
        f"turn the volume {rng.choice(['up', 'down'])}",
        f"turn it {rng.choice(['up', 'down'])} a {rng.choice(['bit', 'little', 'lot'])}",
        f"set the volume to {level}",
        f"set the volume in the {r} to {level}",
        "what song is this",
        f"who sings this {rng.choice(['song', 'track'])}",
        f"{rng.choice(['mute', 'unmute'])} the {rng.choice(['speaker', 'tv', 'music'])}",
        "play the news",
        f"play {g} radio",
    ])


def _weather(rng: random.Random) -> str:
    c, when, day = rng.choice(CITIES), rng.choice(WHEN), rng.choice(DAYS)
    return rng.choice([
        f"what's the weather in {c} {when}",
        f"what's the weather like {when}",
        f"what's the weather {rng.choice(['on', 'next'])} {day}",
        f"what's the weather in {c} on {day}",
        f"will it rain {when}",
        f"will it rain in {c} on {day}",
        f"will it {rng.choice(['snow', 'rain', 'be sunny', 'be windy', 'be cold', 'be hot'])} in {c} {when}",
        f"how {rng.choice(['cold', 'hot', 'warm', 'windy'])} is it {rng.choice(['outside', 'in ' + c])}",
        f"what's the temperature in {c}",
        f"do i need an umbrella {when}",
        f"do i need a jacket {when}",
        f"when does the sun set {when}",
    ])


def _message(rng: random.Random) -> str:
    p, s = rng.choice(PEOPLE), rng.choice(PHRASES)
    return rng.choice([
        f"send a message to {p} saying {s}",
        f"text {p} {s}",
        f"tell {p} {s}",
        f"send {p} a message saying {s}",
        f"email {p} saying {s}",
        f"call {p}",
        f"call {p} on speaker",
        f"video call {p}",
        f"read my {rng.choice(['messages', 'new messages', 'emails', 'last message'])}",
        f"did {p} call",
        f"reply to {p} {s}",
    ])


def _navigation(rng: random.Random) -> str:
    place, near = rng.choice(PLACES), rng.choice(NEARBY)
    return rng.choice([
        f"navigate to {place}",
        f"take me to {place}",
        f"give me directions to {place}",
        f"how long will it take to get to {place}",
        f"how far is {place}",
        f"find a {near} near me",
        f"where is the nearest {near}",
        f"is there a {near} {rng.choice(['nearby', 'near me', 'near ' + place, 'on the way'])}",
        f"how is the traffic to {place}",
        f"avoid {rng.choice(['tolls', 'highways', 'traffic'])} on the way to {place}",
        f"call a taxi to {place}",
    ])


def _time_date(rng: random.Random) -> str:
    c, day = rng.choice(CITIES), rng.choice(DAYS)
    return rng.choice([
        "what time is it",
        f"what time is it in {c}",
        "what's the date today",
        "what day is it today",
        "what's the date tomorrow",
        f"what's the date next {day}",
        f"how many days until {day}",
        f"what's on my calendar {rng.choice(WHEN)}",
        f"what's on my calendar for {day}",
        f"add a meeting with {rng.choice(PEOPLE)} at {_time(rng)}",
        f"add a meeting with {rng.choice(PEOPLE)} on {day} at {_time(rng)}",
        f"cancel my meeting with {rng.choice(PEOPLE)}",
        "when is my next meeting",
    ])


def _home(rng: random.Random) -> str:
    r, deg = _room(rng), number_words(rng.randint(60, 80) if rng.random() < 0.6 else rng.randint(15, 30))
    return rng.choice([
        f"set the temperature to {deg} degrees",
        f"set the {r} to {deg} degrees",
        f"make it {rng.choice(['warmer', 'cooler'])} in the {r}",
        f"turn {rng.choice(['on', 'off', 'up', 'down'])} the {rng.choice(['heating', 'air conditioning'])}",
        f"what's the temperature in the {r}",
        f"{rng.choice(['lock', 'unlock', 'open', 'close'])} the {rng.choice(['front', 'back', 'garage'])} door",
        f"is the {rng.choice(['front', 'back', 'garage'])} door {rng.choice(['locked', 'open', 'closed'])}",
        f"{rng.choice(['open', 'close'])} the {r} {rng.choice(['blinds', 'curtains', 'windows'])}",
        f"start the {rng.choice(['vacuum', 'dishwasher', 'washing machine', 'coffee machine'])}",
        f"preheat the oven to {number_words(rng.choice(range(150, 500, 25)))} degrees",
    ])


def _reminder(rng: random.Random) -> str:
    task, t, item = rng.choice(TASKS), _time(rng), rng.choice(ITEMS)
    lst = rng.choice(LISTS)
    return rng.choice([
        f"remind me to {task} at {t}",
        f"remind me to {task} {rng.choice(WHEN)}",
        f"remind me to {task} on {rng.choice(DAYS)}",
        f"add {item} to my {lst} list",
        f"add {item} and {rng.choice(ITEMS)} to the {lst} list",
        f"remove {item} from my {lst} list",
        f"what's on my {lst} list",
        f"do i have any reminders {rng.choice(WHEN)}",
        f"delete the reminder to {task}",
    ])


def _misc(rng: random.Random) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 20)
    op = rng.choice(["plus", "minus", "times", "divided by"])
    unit = rng.choice(["miles", "pounds", "inches", "feet", "cups"])
    metric = rng.choice(["kilometers", "kilograms", "centimeters", "meters", "liters"])
    phrase = rng.choice(["hello", "thank you", "good night", "goodbye"])
    language = rng.choice(["french", "spanish", "german", "italian", "japanese"])
    app = rng.choice(["calendar", "camera", "browser", "calculator", "settings", "email"])
    return rng.choice([
        f"what is {number_words(a)} {op} {number_words(b)}",
        f"what's {number_words(a)} {op} {number_words(b)}",
        f"convert {number_words(a)} {unit} to {metric}",
        f"tell me a {rng.choice(['joke', 'story', 'fun fact', 'riddle'])}",
        f"what's the {rng.choice(['news', 'latest news', 'sports news', 'traffic'])} {rng.choice(WHEN)}",
        f"{rng.choice(['stop', 'cancel', 'never mind', 'go back', 'repeat that', 'help', 'louder', 'quieter'])}",
        f"how do you say {phrase} in {language}",
        f"take a {rng.choice(['photo', 'picture', 'screenshot', 'note'])}",
        f"{rng.choice(['open', 'close'])} the {app}",
        "what's the battery level",
        f"turn {rng.choice(['on', 'off'])} {rng.choice(['bluetooth', 'wifi', 'do not disturb', 'airplane mode'])}",
    ])


# Each command family with a weight: how often it is asked for.
FAMILIES = [(_lights, 3), (_timer, 2), (_alarm, 2), (_music, 3), (_weather, 2), (_message, 2),
            (_navigation, 2), (_time_date, 2), (_home, 2), (_reminder, 2), (_misc, 1)]


def sample(rng: random.Random) -> str:
    """One command, normalized."""
    family = rng.choices([f for f, _ in FAMILIES], weights=[w for _, w in FAMILIES])[0]
    text = family(rng)
    if text.split()[0] not in QUESTION_WORDS:
        polite = rng.choice(POLITE)
        text = polite + text + rng.choice(POLITE_END if polite != "please " else [""])
    return " ".join((rng.choice(WAKE) + text).split())


def generate(n: int, seed: int = 0, max_tries: int = 50) -> list[str]:
    """`n` distinct commands, deterministic given `seed`; raises if the grammar runs out."""
    return distinct(sample, n, seed, max_tries)


def distinct(sample_one, n: int, seed: int = 0, max_tries: int = 50) -> list[str]:
    """`n` distinct sentences from `sample_one(rng)` (a grammar's), in the order first drawn."""
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    tries = 0
    while len(seen) < n:
        seen.setdefault(sample_one(rng), None)
        tries += 1
        if tries > max_tries * n + 1000:
            raise ValueError(f"the command grammar gave only {len(seen)} distinct sentences, {n} asked for")
    return list(seen)
