"""Everyday sentences people say, each in the form people write and the form a voice should read.

    rows = generate(5000, seed=0)   # 5000 distinct sentences, the same for the same seed
    rows[0] == {"text": "Meet me at 5:30 p.m. on May 3rd.",          # display: case, digits, $ and %
                "spoken": "meet me at five thirty p m on may third.",  # what a TTS engine reads
                "template": "meet_at"}

Sentences come from templates with slots (names, times, dates, money, addresses, phone numbers,
percentages, ordinals, quantities, short replies); every template is drawn equally often, so no
structure dominates however many sentences are asked for. The spoken form is lowercase words and
apostrophes, with only the punctuation that shapes how a sentence is read (, . ? !): no digits or
symbols. Numbers are spoken the way `asr.text.normalize` reads their display form ("5:05" "five oh
five", "$12.50" "twelve dollars and fifty cents", years as "two thousand nineteen"), so
normalize(text) == normalize(spoken): a model trained on either form hears what it is told.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from asr.text.normalize import normalize, ordinal_words
from asr.text.normalize import number_to_words as say

# --------------------------------------------------------------------------- word lists

FIRST_NAMES = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Susan Richard
Jessica Joseph Sarah Thomas Karen Daniel Nancy Matthew Lisa Anthony Betty Mark Sandra Steven Ashley Paul
Emily Andrew Michelle Joshua Laura Kevin Rachel Brian Amy Jose Maria Luis Carmen Carlos Sofia Diego
Lucia Miguel Isabel Juan Elena Alejandro Valentina Wei Mei Li Jun Hiroshi Yuki Kenji Aiko Min Jin
Priya Arjun Ananya Rahul Deepa Vikram Kavya Sanjay Aisha Omar Fatima Hassan Layla Yusuf Zainab Ahmed
Amara Kwame Chidi Ngozi Kofi Abena Tunde Zola Olga Ivan Natasha Dmitri Katya Pierre Chloe Lucas Camille
Hans Greta Lars Ingrid Sven Astrid Marco Giulia Luca Chiara Sean Siobhan Liam Aoife Noah Emma Olivia
Ethan Mia Ava Mason Zoe Leo Nora Isaac Hannah Grace Samuel Ruth Malik Imani Jamal Tiana Andre Keisha""".split()
LAST_NAMES = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Taylor Thomas Moore Jackson Martin Lee Thompson White Harris Clark Lewis Walker
Hall Young King Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips
Evans Turner Torres Parker Collins Edwards Stewart Morris Nguyen Chen Wang Kim Park Tanaka Suzuki Patel
Shah Singh Kumar Gupta Khan Ali Hussain Okafor Mensah Okoye Diallo Mwangi Ivanov Petrov Novak Kowalski
Muller Schmidt Rossi Bianchi Dubois Moreau Jensen Larsen Murphy Kelly Sullivan OBrien Cohen Levi""".replace(
    "OBrien", "O'Brien").split()
CITIES = ["Boston", "Chicago", "Denver", "Seattle", "Austin", "Atlanta", "Phoenix", "Portland", "Miami",
          "Dallas", "Houston", "Toronto", "Vancouver", "London", "Dublin", "Paris", "Berlin", "Madrid",
          "Rome", "Lisbon", "Tokyo", "Seoul", "Mumbai", "Delhi", "Lagos", "Nairobi", "Cairo", "Sydney",
          "Melbourne", "Mexico City", "New York", "San Diego", "Nashville", "Detroit", "Oslo", "Vienna"]
STREETS = ["Elm", "Oak", "Maple", "Pine", "Cedar", "Main", "Park", "Lake", "Hill", "Church", "Mill",
           "River", "Spring", "Sunset", "Highland", "Washington", "Lincoln", "Franklin", "Jefferson",
           "Madison", "Walnut", "Chestnut", "Willow", "Birch", "Forest", "Meadow", "Ridge", "Harbor"]
STREET_KINDS = ["Street", "Avenue", "Road", "Lane", "Drive", "Boulevard", "Court", "Way", "Place"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WHEN = ["today", "tomorrow", "tonight", "this weekend", "next week", "this afternoon", "tomorrow morning",
        "later today", "next month", "on Friday", "on Monday", "this evening", "after lunch"]
PLACES = ["the bank", "the station", "the library", "the airport", "the coffee shop", "the park",
          "the front desk", "the main entrance", "the pharmacy", "the bus stop", "the office", "the gym",
          "the corner", "the hotel lobby", "the parking lot", "the supermarket", "the post office"]
SHOPS = ["pharmacy", "gas station", "grocery store", "cash machine", "coffee shop", "bakery", "hospital",
         "bus stop", "restaurant", "bookstore", "hardware store", "laundromat"]
ITEMS = ["apples", "bagels", "tickets", "batteries", "boxes", "eggs", "lemons", "chairs", "coffees",
         "sandwiches", "towels", "candles", "bottles of water", "pizzas", "notebooks", "oranges",
         "cupcakes", "light bulbs", "pairs of socks", "bags of rice"]
THINGS = ["jacket", "ticket", "room", "coffee", "sandwich", "bike", "lamp", "sofa", "haircut", "taxi",
          "parking spot", "umbrella", "phone case", "cake", "rental car", "gym membership"]
EVENTS = ["meeting", "movie", "game", "concert", "party", "class", "show", "dinner", "interview",
          "appointment", "wedding", "practice"]
REPLIES = ["Yes, please.", "No, thank you.", "No, not yet.", "Sure, why not?", "Okay.", "Sounds good.",
           "Of course.", "I don't think so.", "Maybe later.", "Not really.", "Absolutely!", "Thanks a lot!",
           "I'm not sure.", "Let me check.", "That works for me.", "Good idea.", "Never mind.",
           "Yes, that's right.", "No, that's wrong.", "I'd love to.", "Sorry, I can't.", "Hold on a second.",
           "Just a minute.", "Fine by me.", "Why not?", "Are you sure?", "Really?", "Got it.", "Me too.",
           "Not at all.", "You're welcome.", "Excuse me?", "I agree.", "See you soon.", "Good morning!",
           "Good night.", "Hi there!", "Thank you so much.", "No problem.", "Yes, I did.", "No, I didn't.",
           "Of course not.", "Definitely.", "I hope so.", "I guess so.", "Wait, what?", "Oh, really?",
           "Nice to meet you.", "Take care.", "Have a good one!", "Yes, of course.", "Alright, let's go."]

# --------------------------------------------------------------------------- slots: rng -> (display, spoken)

Slot = tuple[str, str]


def _same(words: str) -> Slot:
    return words, words.lower()


def _minute_words(minute: int) -> str:
    return ("oh " if minute < 10 else "") + say(minute)


def time_slot(rng: random.Random) -> Slot:
    """'5:30 p.m.', '7:05', '9 a.m.', 'noon', 'half past six'."""
    hour, kind = rng.randint(1, 12), rng.random()
    suffix = rng.choice(["", "", " a.m.", " p.m."])
    spoken_suffix = suffix.replace(".", " ").rstrip()
    if kind < 0.08:
        return _same(rng.choice(["noon", "midnight"]))
    if kind < 0.16:
        return _same(rng.choice(["half past", "quarter past", "quarter to", "ten past"]) + " " + say(hour))
    if kind < 0.3:
        return f"{hour} o'clock", f"{say(hour)} o'clock"
    if kind < 0.45:
        suffix = suffix or " p.m."
        return f"{hour}{suffix}", say(hour) + suffix.replace(".", " ").rstrip()
    minute = rng.choice([5, 10, 15, 20, 30, 40, 45, 50, rng.randint(1, 59)])
    return f"{hour}:{minute:02d}{suffix}", f"{say(hour)} {_minute_words(minute)}{spoken_suffix}"


def _suffix(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def ordinal_slot(rng: random.Random, high: int = 31) -> Slot:
    n = rng.randint(1, high)
    return f"{n}{_suffix(n)}", ordinal_words(n)


def date_slot(rng: random.Random) -> Slot:
    """'May 3rd', 'the 21st of June', 'Friday, March 2nd'."""
    month, (d, s) = rng.choice(MONTHS), ordinal_slot(rng, 28)
    kind = rng.random()
    if kind < 0.5:
        return f"{month} {d}", f"{month.lower()} {s}"
    if kind < 0.8:
        return f"the {d} of {month}", f"the {s} of {month.lower()}"
    day = rng.choice(DAYS)
    return f"{day}, {month} {d}", f"{day.lower()}, {month.lower()} {s}"


def year_slot(rng: random.Random) -> Slot:
    # 2000-2030 only: normalize reads "1998" as "one thousand nine hundred ninety eight", which nobody says
    y = rng.randint(2000, 2030)
    return str(y), say(y)


def money_slot(rng: random.Random) -> Slot:
    """'$12.50', '$3', '€40', '£7.99', '$1,200', '99 cents'."""
    sign, one, many, sub_one, sub_many = rng.choice([("$", "dollar", "dollars", "cent", "cents")] * 6 + [
        ("€", "euro", "euros", "cent", "cents"), ("£", "pound", "pounds", "penny", "pence")])
    kind = rng.random()
    whole = rng.choice([rng.randint(1, 20), rng.randint(1, 100), rng.randint(100, 999)])
    if kind < 0.1 and sign == "$":
        cents = rng.randint(2, 99)
        return f"{cents} cents", f"{say(cents)} cents"
    if kind < 0.2:
        whole = rng.randint(1, 50) * 100
        return f"{sign}{whole:,}", f"{say(whole)} {many}"
    if kind < 0.55:
        return f"{sign}{whole}", f"{say(whole)} {one if whole == 1 else many}"
    cents = rng.choice([99, 50, 25, 95, 49, 75, rng.randint(1, 99)])
    spoken = f"{say(whole)} {one if whole == 1 else many} and {say(cents)} {sub_one if cents == 1 else sub_many}"
    return f"{sign}{whole}.{cents:02d}", spoken


def phone_slot(rng: random.Random) -> Slot:
    """'555-0123' or '(617) 555-0123', read digit by digit in groups."""
    groups = [str(rng.randint(200, 999)), f"{rng.randint(0, 9999):04d}"]
    display = "-".join(groups)
    if rng.random() < 0.5:
        area = str(rng.randint(201, 989))
        groups.insert(0, area)
        display = f"({area}) {display}" if rng.random() < 0.5 else f"{area}-{display}"
    return display, ", ".join(" ".join(say(int(c)) for c in g) for g in groups)


def address_slot(rng: random.Random) -> Slot:
    """'42 Elm Street', '7 Oak Avenue, Apartment 3B'."""
    n = rng.choice([rng.randint(1, 99), rng.randint(100, 999)])
    street = f"{rng.choice(STREETS)} {rng.choice(STREET_KINDS)}"
    display, spoken = f"{n} {street}", f"{say(n)} {street.lower()}"
    if rng.random() < 0.25:
        apt, letter = rng.randint(1, 20), rng.choice("ABCD")
        display, spoken = f"{display}, Apartment {apt}{letter}", f"{spoken}, apartment {say(apt)} {letter.lower()}"
    return display, spoken


def percent_slot(rng: random.Random) -> Slot:
    if rng.random() < 0.2:
        whole, tenth = rng.randint(0, 9), rng.randint(1, 9)
        return f"{whole}.{tenth}%", f"{say(whole)} point {say(tenth)} percent"
    n = rng.choice([5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 80, 90, 100, rng.randint(1, 99)])
    return f"{n}%", f"{say(n)} percent"


def quantity_slot(rng: random.Random) -> Slot:
    """'3 tickets' or 'three tickets' (people write small numbers either way)."""
    n, item = rng.randint(2, 24), rng.choice(ITEMS)
    return (f"{n} {item}" if n > 9 or rng.random() < 0.5 else f"{say(n)} {item}"), f"{say(n)} {item}"


def number_slot(rng: random.Random) -> Slot:
    n = rng.randint(2, 12)
    return (str(n) if rng.random() < 0.5 else say(n)), say(n)


def big_number_slot(rng: random.Random) -> Slot:
    n = rng.choice([rng.randint(2, 99) * 100, rng.randint(1000, 60000)])
    return f"{n:,}", say(n)


def duration_slot(
    rng: random.Random, units: tuple[str, ...] = ("minutes", "minutes", "hours", "days", "weeks")
) -> Slot:
    unit = rng.choice(units)
    n = rng.choice([5, 10, 15, 20, 30, 45]) if unit == "minutes" else rng.randint(2, 12)
    if rng.random() < 0.15:
        return _same(rng.choice(["an hour", "half an hour", "a minute", "a week", "an hour and a half"]))
    return f"{n} {unit}", f"{say(n)} {unit}"


def measure(units: list[str], low: int, high: int) -> Callable[[random.Random], Slot]:
    """A slot of amounts in `units`: '2.5 miles', '12 kilometers', '72 degrees'."""
    def slot(rng: random.Random) -> Slot:
        unit = rng.choice(units)
        if rng.random() < 0.3:
            whole, tenth = rng.randint(low, min(high, 30)), rng.randint(1, 9)
            return f"{whole}.{tenth} {unit}", f"{say(whole)} point {say(tenth)} {unit}"
        n = rng.randint(max(low, 2), high)
        return f"{n} {unit}", f"{say(n)} {unit}"
    return slot


def spot(kinds: list[str]) -> Callable[[random.Random], Slot]:
    """A slot of numbered places: 'Gate B12', 'Room 8', 'Platform 3'."""
    def slot(rng: random.Random) -> Slot:
        kind, n = rng.choice(kinds), rng.randint(1, 40)
        if kind in ("Gate", "Seat") and rng.random() < 0.6:
            letter = rng.choice("ABCDEF")
            return f"{kind} {letter}{n}", f"{kind.lower()} {letter.lower()} {say(n)}"
        return f"{kind} {n}", f"{kind.lower()} {say(n)}"
    return slot


def full_name_slot(rng: random.Random) -> Slot:
    return _same(f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}")


SLOTS: dict[str, Callable[[random.Random], Slot]] = {
    "name": lambda rng: _same(rng.choice(FIRST_NAMES)), "fullname": full_name_slot,
    "city": lambda rng: _same(rng.choice(CITIES)), "place": lambda rng: _same(rng.choice(PLACES)),
    "shop": lambda rng: _same(rng.choice(SHOPS)), "thing": lambda rng: _same(rng.choice(THINGS)),
    "event": lambda rng: _same(rng.choice(EVENTS)), "day": lambda rng: _same(rng.choice(DAYS)),
    "when": lambda rng: _same(rng.choice(WHEN)), "reply": lambda rng: _same(rng.choice(REPLIES)),
    "time": time_slot, "date": date_slot, "year": year_slot, "money": money_slot, "phone": phone_slot,
    "address": address_slot, "percent": percent_slot, "qty": quantity_slot, "number": number_slot,
    "big": big_number_slot, "duration": duration_slot, "ordinal": ordinal_slot,
    "delay": lambda rng: duration_slot(rng, ("minutes", "minutes", "hours")),
    "distance": measure(["miles", "kilometers"], 1, 400), "weight": measure(["pounds", "kilos"], 1, 60),
    "temp": measure(["degrees"], 2, 95), "height": measure(["feet", "meters"], 2, 40),
    "platform": spot(["Platform", "Track", "Gate"]), "room": spot(["Room", "Room", "Hall"]),
    "seat": spot(["Seat", "Table", "Gate", "Bus", "Room", "Desk"]),
    "crowd_event": lambda rng: _same(rng.choice(["game", "concert", "party", "wedding", "show", "parade"])),
}

# --------------------------------------------------------------------------- templates

TEMPLATES: dict[str, str] = {
    # short replies, alone and followed by a sentence
    "reply": "{reply}",
    "reply_time": "{reply} I'll be there at {time}.",
    "reply_thanks": "{reply} Thanks, {name}.",
    "reply_when": "{reply} See you {when}.",
    "reply_cost": "{reply} It was only {money}.",
    "reply_call": "{reply} Call me at {phone}.",
    # questions
    "q_meet": "Can you meet me at {time}?",
    "q_coming": "Is {name} coming {when}?",
    "q_cost": "How much is the {thing}?",
    "q_still_on": "Are we still on for {day} at {time}?",
    "q_nearest": "Where's the nearest {shop}?",
    "q_change": "Do you have change for {money}?",
    "q_far": "How far is it to {city}?",
    "q_weather": "What's the weather like in {city} {when}?",
    "q_seen": "Have you seen {name} since {day}?",
    "q_start": "What time does the {event} start {when}?",
    "q_number": "What's {name}'s phone number?",
    "q_address": "Is this {address}?",
    "q_floor": "Is {name}'s office on the {ordinal} floor?",
    "q_late": "Why is the {event} starting {delay} late?",
    "q_really": "Did you really pay {money} for that {thing}?",
    "q_when_birthday": "Isn't {name}'s birthday on {date}?",
    "q_who": "Who's picking up {name} at {time}?",
    # requests
    "r_call": "Please call {fullname} at {phone}.",
    "r_pick_up": "Could you pick up {qty} on your way home?",
    "r_remind": "Remind me to call {name} at {time}.",
    "r_send": "Send the package to {address}.",
    "r_book": "Book a table for {number} at {time} {when}.",
    "r_transfer": "Please transfer {money} to {name}.",
    "r_thermostat": "Set the thermostat to {temp}.",
    "r_meet_place": "Let's meet at {place} at {time}.",
    "r_lend": "Can you lend me {money} until {day}?",
    "r_text": "Tell {name} I'll be {delay} late.",
    "r_order": "I'd like to order {qty}, please.",
    "r_wait": "Wait for me at {seat}, please.",
    "r_write_down": "Write this down: {fullname}, {phone}.",
    # statements
    "meet_at": "Meet me at {time} on {date}.",
    "costs": "It costs {money}.",
    "total": "The total comes to {money}.",
    "live_at": "I live at {address}.",
    "my_number": "My number is {phone}.",
    "flight": "My flight leaves at {time} on {date}.",
    "rent": "Rent went up {percent} this year.",
    "battery": "My battery is at {percent}.",
    "drove": "We drove {distance} today.",
    "crowd": "There were about {big} people at the {crowd_event}.",
    "born": "I was born on {date}, {year}.",
    "moved": "We moved to {city} in {year}.",
    "floor": "{name} lives on the {ordinal} floor.",
    "train": "The train to {city} leaves from {platform} at {time}.",
    "meeting_room": "The {event} is at {time} in {room}.",
    "be_there": "I'll be there in {duration}.",
    "temperature": "It's {temp} in {city} right now.",
    "called": "{fullname} called at {time}.",
    "closes": "The store closes at {time} {when}.",
    "each": "Tickets are {money} each.",
    "paid_for": "I paid {money} for {qty}.",
    "left": "Only {percent} of the seats are left.",
    "arrives": "The package arrives on {date}.",
    "anniversary": "Our anniversary is on {date}.",
    "two_coming": "{name} and {name} are coming at {time}.",
    "doctor": "The doctor can see you at {time} on {day}.",
    "address_city": "My address is {address}, {city}.",
    "nth_time": "That's the {ordinal} time this week!",
    "need": "We need {qty} for the party.",
    "happy_birthday": "Happy {ordinal} birthday, {name}!",
    "waiting": "I've been waiting for {duration}.",
    "weighs": "The suitcase weighs {weight}.",
    "tall": "The tree in our yard is {height} tall.",
    "seat_is": "Your seat is {seat}, {name}.",
    "saved": "{name} saved {money} last month.",
    "since": "{fullname} has worked here since {year}.",
    "discount": "Everything is {percent} off until {date}.",
    "salary": "The job pays {money} an hour.",
    "population": "About {big} people live in that town.",
    "room": "Your room is on the {ordinal} floor, {name}.",
}

_SLOT = re.compile(r"\{(\w+)\}")


def spoken_clean(text: str) -> str:
    """Lowercase words and apostrophes with , . ? ! where they shape the reading; nothing else."""
    text = re.sub(r"[:;]", ",", text.lower())
    text = re.sub(r"(?<=[a-z])\.(?=[a-z])", " ", text)  # "p.m." is read "p m"
    text = re.sub(r"[^a-z' ,.?!]+", " ", text)
    text = re.sub(r"\s+([,.?!])", r"\1", " ".join(text.split()))
    return re.sub(r"[,.]+([,.?!])", r"\1", text)  # "p m." from "p.m.." and "p m," from "p.m.,"


def fill(template: str, rng: random.Random) -> tuple[str, str]:
    """One (display, spoken) sentence from a template's literal text and random slot fillers."""
    display, spoken, pos = [], [], 0
    for m in _SLOT.finditer(template):
        d, s = SLOTS[m.group(1)](rng)
        display += [template[pos : m.start()], d]
        spoken += [template[pos : m.start()], s]
        pos = m.end()
    display.append(template[pos:])
    spoken.append(template[pos:])
    text = re.sub(r"\.\.", ".", "".join(display))  # "at 9 a.m.." -> "at 9 a.m."
    return text[0].upper() + text[1:], spoken_clean("".join(spoken))


def generate(n: int, seed: int = 0) -> list[dict]:
    """n sentences as {"text", "spoken", "template"}, the same for the same seed. No two sound the
    same ("3 tickets" and "three tickets" are one sentence), so split sets never share audio."""
    rng = random.Random(seed)
    names = sorted(TEMPLATES)
    seen: set[str] = set()
    out: list[dict] = []
    for _ in range(max(1000, 50 * n)):
        if len(out) == n:
            return out
        name = rng.choice(names)
        text, spoken = fill(TEMPLATES[name], rng)
        key = normalize(spoken)
        if key not in seen:
            seen.add(key)
            out.append({"text": text, "spoken": spoken, "template": name})
    raise ValueError(f"the templates gave {len(out)} distinct sentences, {n} asked for")
