"""Spoken commands to a voice-controlled computer, in Spanish, from a small random grammar.

    sentences = generate(5000, seed=0)   # 5000 distinct sentences, the same for the same seed

The Spanish counterpart of `asr.synth.commands`: the same families of commands, as a native speaker
would say them to a voice assistant in neutral Spanish. Output is already normalized: lowercase letters
with their accents (á é í ó ú ñ ü) and single spaces, no punctuation (no ¿ ? ¡ !), numbers and times
spoken as words ("despiértame a las siete y media", "pon un temporizador de veinticinco minutos").
A few hundred words in all, many tens of thousands of distinct sentences, so a model can learn the
vocabulary from a few thousand utterances while dev and test still get sentences it has never heard.
"""

# long module: word lists and eleven command families, as commands.py, plus Spanish's article and gender
# agreement and the imperative -> infinitive map of polite requests: data, read top to bottom

from __future__ import annotations

import random

from asr.synth.commands import distinct

# --------------------------------------------------------------------------- numbers

_UNITS = ("cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciséis "
          "diecisiete dieciocho diecinueve veinte veintiuno veintidós veintitrés veinticuatro veinticinco "
          "veintiséis veintisiete veintiocho veintinueve").split()
_TENS = "_ _ _ treinta cuarenta cincuenta sesenta setenta ochenta noventa".split()
_HUNDREDS = ("_ ciento doscientos trescientos cuatrocientos quinientos seiscientos setecientos ochocientos "
             "novecientos").split()


def number_words(n: int) -> str:
    """0..999 as Spanish words, the form used for counting: 21 'veintiuno', 105 'ciento cinco'."""
    if not 0 <= n <= 999:
        raise ValueError(f"number_words covers 0..999, not {n}")
    if n < 30:
        return _UNITS[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " y " + _UNITS[n % 10])
    if n == 100:
        return "cien"
    rest = n % 100
    return _HUNDREDS[n // 100] + ("" if rest == 0 else " " + number_words(rest))


def _count(n: int, one: str, many: str, feminine: bool = False) -> str:
    """`n` of a noun, agreeing in gender: 'un minuto', 'veintiún grados', 'treinta y una millas'."""
    if n == 1:
        return ("una " if feminine else "un ") + one
    words = number_words(n)
    if words.endswith("uno"):
        words = words[:-3] + ("una" if feminine else "ún" if words == "veintiuno" else "un")
    if feminine:
        words = words.replace("ientos", "ientas")
    return f"{words} {many}"


# --------------------------------------------------------------------------- word lists

# nouns carry their article, which gives gender and number: "la cocina", "el salón", "las luces"
ROOMS = ["la cocina", "el dormitorio", "el salón", "la sala", "el baño", "la oficina", "el pasillo", "el garaje",
         "el comedor", "el sótano", "el cuarto de los niños", "la habitación de invitados", "el porche",
         "el jardín", "el ático", "el estudio", "el lavadero", "la terraza", "la entrada", "el despacho"]
LIGHTS = ["las luces", "la luz", "la lámpara", "la luz del techo", "la lámpara del escritorio", "la lámpara de pie",
          "la lamparita de noche", "las lámparas", "el foco", "los focos"]
DEVICES = ["la tele", "la televisión", "la radio", "el ventilador", "el calefactor", "el aire acondicionado",
           "la cafetera", "el lavavajillas", "la lavadora", "el horno", "el microondas", "el altavoz", "la impresora",
           "la aspiradora", "el ordenador", "la computadora"]
COLORS = ["rojo", "azul", "verde", "blanco", "amarillo", "morado", "naranja", "rosa"]
GENRES = ["de jazz", "de rock", "clásica", "pop", "country", "de blues", "de hip hop", "folk", "de reggae", "soul",
          "de metal", "de piano", "relajante", "electrónica", "acústica", "para entrenar", "para dormir",
          "de fiesta", "de salsa", "flamenco", "de reguetón", "de cumbia", "romántica", "latina"]
PLAYLISTS = ["de la mañana", "para el gimnasio", "para cenar", "de viaje", "de favoritos", "para concentrarme",
             "de verano", "para correr", "para estudiar", "de los domingos", "de noche"]
MEDIA = ["la música", "la canción", "el álbum", "la lista", "el pódcast", "la radio", "el audiolibro", "el episodio"]
CITIES = ["madrid", "barcelona", "valencia", "sevilla", "bilbao", "málaga", "zaragoza", "granada", "ciudad de méxico",
          "buenos aires", "bogotá", "lima", "santiago", "quito", "caracas", "montevideo", "la habana", "san josé",
          "la paz", "londres", "parís", "berlín", "roma", "nueva york", "miami", "los ángeles"]
DAYS = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]
WHEN = ["hoy", "mañana", "esta noche", "esta mañana", "esta tarde", "este fin de semana", "la semana que viene",
        "mañana por la mañana", "mañana por la tarde", "mañana por la noche", "pasado mañana"]
PEOPLE = ["mamá", "papá", "juan", "maría", "carlos", "lucía", "josé", "ana", "pedro", "laura", "javier", "carmen",
          "pablo", "sofía", "diego", "miguel", "elena", "marta", "luis", "andrés", "paula", "camila", "la abuela",
          "el abuelo", "mi hermana", "mi hermano", "mi jefe", "la oficina"]
# statements, which also follow "dile a maría que ..."
NEWS = ["llego tarde", "ya voy de camino", "llego diez minutos tarde", "la cena está lista", "te quiero",
        "ya casi estoy en casa", "quedamos a mediodía", "la reunión está cancelada", "te llamo luego",
        "estoy en el supermercado", "hace falta más café", "la puerta está abierta", "nos vemos mañana",
        "no puedo ir", "los niños ya están dormidos", "no te olvides de la leche", "salgo ahora mismo"]
# and greetings and questions, which only follow "diciendo"
PHRASES = NEWS + ["nos vemos pronto", "llámame cuando puedas", "feliz cumpleaños", "muchas gracias",
                  "buenas noches", "puedes venir a buscarme", "dónde estás", "que tengas un buen día",
                  "qué tal tu día", "mucha suerte hoy"]
PLACES = ["el aeropuerto", "la estación", "el trabajo", "mi casa", "la gasolinera más cercana", "el hospital",
          "la biblioteca", "el parque", "el centro comercial", "la playa", "el museo", "la oficina", "el colegio",
          "la farmacia más cercana", "la cafetería más cercana", "la estación de tren", "el centro", "el banco",
          "el gimnasio", "la oficina de correos", "el supermercado", "la parada de autobús", "el estadio",
          "el zoológico", "el puerto"]
LANDMARKS = [p for p in PLACES if "cercana" not in p]  # for "cerca de ..."
NEARBY = ["una cafetería", "un restaurante", "una gasolinera", "una farmacia", "un hotel", "una pizzería",
          "una panadería", "un aparcamiento", "un hospital", "un cine", "un supermercado",
          "un banco", "un cajero automático", "un lavadero de coches"]
TASKS = ["llamar al dentista", "comprar leche", "sacar la basura", "regar las plantas", "pagar el alquiler",
         "darle de comer al gato", "sacar al perro", "revisar el horno", "recoger a los niños", "enviar el informe",
         "reservar una mesa", "llamar a mamá", "tomarme la medicina", "cargar el móvil", "cerrar la puerta con llave",
         "limpiar la cocina", "ir al gimnasio", "comprar un regalo", "hacer una copia de seguridad"]
ITEMS = ["leche", "huevos", "pan", "mantequilla", "café", "manzanas", "plátanos", "queso", "arroz", "pasta",
         "tomates", "cebollas", "pollo", "zumo de naranja", "jugo de naranja", "yogur", "azúcar", "té", "patatas",
         "jabón", "papel de cocina", "pilas", "cereales"]
LISTS = ["la compra", "tareas", "pendientes", "la maleta", "cumpleaños", "trabajo", "regalos"]
TIMER_NAMES = ["la pasta", "los huevos", "la lavadora", "la pizza", "el té", "el pastel", "el arroz", "el ejercicio",
               "la siesta", "el horno"]
# (what to say, the preposition before the time)
ALARM_WORDS = [("despiértame", "a"), ("pon una alarma", "a"), ("pon una alarma", "para"), ("ponme la alarma", "a"),
               ("ponme una alarma", "para"), ("tengo que levantarme", "a"), ("programa una alarma", "para"),
               ("pon el despertador", "a"), ("programa el despertador", "para")]
ALARM_DAYS = ["el " + d for d in DAYS] + ["mañana", "pasado mañana", "todos los días", "entre semana",
                                          "los fines de semana"]
WAKE = ["", "", "", "", "oye computadora ", "computadora ", "hola computadora "]
POLITE = ["", "", "", "por favor ", "puedes ", "podrías "]  # before requests only, not before questions
POLITE_END = ["", "", "", "", " por favor", " por favor", " ahora"]
# sentences that take no polite opening: questions, and statements such as "tengo que levantarme a las siete"
QUESTION_WORDS = {"qué", "cuánto", "cuánta", "cuántos", "cuántas", "cómo", "cuándo", "dónde", "quién", "cuál", "a",
                  "va", "hay", "está", "están", "necesito", "tengo", "me"}
# "puedes ..." and "podrías ..." take the infinitive: "puedes encender las luces"
INFINITIVES = {
    "enciende": "encender", "prende": "prender", "apaga": "apagar", "pon": "poner", "ponme": "ponerme",
    "baja": "bajar", "sube": "subir", "cambia": "cambiar", "programa": "programar", "cancela": "cancelar",
    "para": "parar", "detén": "detener", "pausa": "pausar", "reanuda": "reanudar", "añade": "añadir",
    "agrega": "agregar", "recuérdame": "recordarme", "despiértame": "despertarme", "pospón": "posponer",
    "borra": "borrar", "elimina": "eliminar", "reinicia": "reiniciar", "salta": "saltar", "pasa": "pasar",
    "repite": "repetir", "silencia": "silenciar", "quita": "quitar", "manda": "mandar", "envía": "enviar",
    "envíale": "enviarle", "dile": "decirle", "escríbele": "escribirle", "llama": "llamar", "haz": "hacer",
    "léeme": "leerme", "lee": "leer", "responde": "responder", "contesta": "contestar", "llévame": "llevarme",
    "dame": "darme", "busca": "buscar", "evita": "evitar", "pide": "pedir", "pídeme": "pedirme", "mueve": "mover",
    "apunta": "apuntar", "abre": "abrir", "cierra": "cerrar", "bloquea": "bloquear", "desbloquea": "desbloquear",
    "precalienta": "precalentar", "prepárame": "prepararme", "cuéntame": "contarme", "dime": "decirme",
    "convierte": "convertir", "saca": "sacar", "toma": "tomar", "activa": "activar", "desactiva": "desactivar",
    "vuelve": "volver", "atenúa": "atenuar", "calcula": "calcular", "traduce": "traducir",
}
# " ahora" is not said after a sentence that already says when: a day, a time, a delay
WHEN_WORDS = {"mañana", "hoy", "noche", "tarde", "semana", "mediodía", "medianoche", "dentro", "segundos", "minutos",
              "hora", "horas", "punto", *DAYS}


# --------------------------------------------------------------------------- agreement


def _de(noun: str) -> str:
    """'de la cocina', 'del salón'."""
    return "del " + noun[3:] if noun.startswith("el ") else "de " + noun


def _a(noun: str) -> str:
    """'a la estación', 'al aeropuerto'."""
    return "al " + noun[3:] if noun.startswith("el ") else "a " + noun


def _agree(noun: str, stem: str) -> str:
    """An adjective agreeing with `noun` by its article: ('las luces', 'encendid') -> 'encendidas'."""
    article = noun.split()[0]
    return stem + {"el": "o", "la": "a", "los": "os", "las": "as"}[article]


def _is(noun: str) -> str:
    return "están" if noun.split()[0] in ("los", "las") else "está"


def _definite(noun: str) -> str:
    """'una farmacia' -> 'la farmacia más cercana', 'un cine' -> 'el cine más cercano'."""
    article, rest = noun.split(" ", 1)
    return ("la " if article == "una" else "el ") + rest + " más " + ("cercana" if article == "una" else "cercano")


# --------------------------------------------------------------------------- times and durations

_HOURS = {number_words(h) for h in range(2, 13)}


def _says_when(words: list[str]) -> bool:
    """Whether a sentence already says when: 'mañana', 'el lunes', 'a las siete', 'la una'."""
    return bool(WHEN_WORDS.intersection(words)) or any(
        (a == "las" and b in _HOURS) or (a == "la" and b == "una") for a, b in zip(words, words[1:]))

# the periods of the day that go with each hour on the clock face
_PERIODS = {1: ["de la madrugada", "de la tarde"], 2: ["de la madrugada", "de la tarde"],
            3: ["de la madrugada", "de la tarde"], 4: ["de la madrugada", "de la tarde"],
            5: ["de la madrugada", "de la tarde"], 6: ["de la mañana", "de la tarde"],
            7: ["de la mañana", "de la tarde"], 8: ["de la mañana", "de la tarde", "de la noche"],
            9: ["de la mañana", "de la noche"], 10: ["de la mañana", "de la noche"],
            11: ["de la mañana", "de la noche"], 12: ["del mediodía", "de la noche"]}


def _time(rng: random.Random) -> str:
    """A clock time as spoken: 'las siete y media', 'las ocho menos cuarto', 'la una y diez', 'mediodía'."""
    hour = rng.randint(1, 12)
    h = "la una" if hour == 1 else "las " + number_words(hour)
    kind = rng.random()
    if kind < 0.06:
        return rng.choice(["mediodía", "medianoche"])
    if kind < 0.2:
        text = h + rng.choice(["", " en punto"])
    elif kind < 0.4:
        text = h + " " + rng.choice(["y media", "y cuarto", "menos cuarto", "y diez", "menos diez", "menos veinte",
                                     "y cinco", "menos cinco", "y veinte"])
    else:
        minute = rng.choice([5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, rng.randint(2, 59)])
        if minute <= 30:
            text = f"{h} y {number_words(minute)}"
        elif rng.random() < 0.5:
            text = f"{h} {number_words(minute)}"  # the digital clock's way: "las siete cuarenta y cinco"
        else:
            text = f"{h} menos {number_words(60 - minute)}"
    if rng.random() < 0.5:
        text += " " + rng.choice(_PERIODS[hour])
    return text


def _duration(rng: random.Random) -> str:
    unit = rng.choice(["segundo", "minuto", "hora"])
    kind = rng.random()
    if unit == "hora" and kind < 0.3:
        return rng.choice(["una hora", "media hora", "una hora y media", "dos horas y media", "un cuarto de hora",
                           "tres cuartos de hora"])
    if unit == "hora" and kind < 0.5:
        return f"una hora y {number_words(rng.choice([5, 10, 15, 20, 30, 45]))} minutos"
    if unit == "hora":
        return _count(rng.randint(1, 12), "hora", "horas", feminine=True)
    n = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 35, 40, 45, 50, 60, 90, rng.randint(2, 99)])
    return _count(n, unit, unit + "s")


# --------------------------------------------------------------------------- command families


def _room(rng: random.Random) -> str:
    return rng.choice(ROOMS)


def _lights(rng: random.Random) -> str:
    r, thing, device = _room(rng), rng.choice(LIGHTS), rng.choice(DEVICES)
    on = rng.random() < 0.5
    verb = rng.choice(["enciende", "prende"]) if on else "apaga"
    state = "encendid" if on else "apagad"
    pct = number_words(rng.choice(range(10, 101, 10)) if rng.random() < 0.8 else rng.randint(1, 99))
    return rng.choice([
        f"{verb} {thing} {_de(r)}",
        f"{verb} {thing} en {r}",
        f"{verb} {thing} {_de(r)}",
        f"{rng.choice(['baja', 'atenúa'])} {rng.choice(['las luces', 'la luz'])} {_de(r)}",
        f"{rng.choice(['sube', 'baja'])} el brillo de {thing} {_de(r)}",
        f"pon {thing} {_de(r)} al {pct} por ciento",
        f"pon las luces {_de(r)} más {rng.choice(['claras', 'oscuras', 'cálidas', 'frías', 'suaves'])}",
        f"pon las luces {_de(r)} en {rng.choice(COLORS)}",
        f"cambia las luces {_de(r)} a {rng.choice(COLORS)}",
        f"{_is(thing)} {_agree(thing, state)} {thing} {_de(r)}",
        f"{verb} todas las luces" + rng.choice(["", " de la casa"]),
        f"{verb} {device}",
        f"{verb} {device} {_de(r)}",
        f"{_is(device)} {_agree(device, state)} {device}",
    ])


def _timer(rng: random.Random) -> str:
    d, name = _duration(rng), rng.choice(TIMER_NAMES)
    return rng.choice([
        f"pon un temporizador de {d}",
        f"pon un temporizador de {d} para {name}",
        f"programa un temporizador de {d}",
        f"ponme un temporizador de {d}",
        f"temporizador de {d}",
        f"cuánto le queda al temporizador {_de(name)}",
        "cuánto tiempo le queda al temporizador",
        f"cancela el temporizador {_de(name)}",
        f"{rng.choice(['cancela', 'para', 'detén', 'pausa', 'reanuda'])} el temporizador",
        f"{rng.choice(['añade', 'agrega'])} {d} al temporizador",
        f"recuérdame {rng.choice(TASKS)} {rng.choice(['en', 'dentro de'])} {d}",
    ])


def _alarm(rng: random.Random) -> str:
    t, day = _time(rng), rng.choice(ALARM_DAYS)
    verb, prep = rng.choice(ALARM_WORDS)
    return rng.choice([
        f"{verb} {prep} {t}",
        f"{verb} {day} {prep} {t}",
        f"{verb} {day} {prep} {t}",
        f"pon una alarma para {t} el {rng.choice(DAYS)}",
        f"pospón la alarma {_count(rng.randint(2, 30), 'minuto', 'minutos')}",
        f"{rng.choice(['apaga', 'cancela', 'borra', 'elimina'])} mi alarma de {t}",
        f"{rng.choice(['apaga', 'cancela', 'pospón', 'para', 'detén'])} la alarma",
        "a qué hora está puesta mi alarma",
        f"a qué hora suena la alarma {rng.choice(['mañana', 'el ' + rng.choice(DAYS)])}",
        f"cambia mi alarma {rng.choice(['a', 'para'])} {t}",
    ])


def _music(rng: random.Random) -> str:
    g, r, m = rng.choice(GENRES), _room(rng), rng.choice(MEDIA)
    level = number_words(rng.randint(0, 10))
    article, noun = rng.choice([("la", "canción"), ("la", "pista"), ("el", "episodio")])
    speaker = rng.choice(["el altavoz", "la tele", "la música"])
    return rng.choice([
        f"pon {rng.choice(['música', 'algo de música', 'un poco de música'])} {g}",
        f"pon música {g} en {r}",
        f"pon mi lista {rng.choice(PLAYLISTS)}",
        f"pon mi lista {rng.choice(PLAYLISTS)} en aleatorio",
        f"{rng.choice(['pausa', 'para', 'detén', 'reanuda', 'reinicia'])} {m}",
        f"{rng.choice(['salta', 'pasa', 'repite'])} esta {rng.choice(['canción', 'pista'])}",
        f"pon {article} siguiente {noun}",
        f"pon {article} {noun} anterior",
        f"{rng.choice(['sube', 'baja'])} el volumen",
        f"{rng.choice(['sube', 'baja'])} {rng.choice(['un poco', 'un poquito', 'mucho'])} el volumen",
        f"pon el volumen a {level}",
        f"pon el volumen {_de(r)} a {level}",
        rng.choice(["qué canción es esta", "cómo se llama esta canción"]),
        f"quién canta esta {rng.choice(['canción', 'pista'])}",
        rng.choice([f"silencia {speaker}", f"quita el silencio {_de(speaker)}"]),
        "pon las noticias",
        f"pon una emisora de música {g}",
    ])


def _weather(rng: random.Random) -> str:
    c, when, day = rng.choice(CITIES), rng.choice(WHEN), rng.choice(DAYS)
    return rng.choice([
        f"qué tiempo hace en {c} {when}",
        f"qué tiempo va a hacer {when}",
        f"qué tiempo hará en {c} {when}",
        f"cómo va a estar el clima {when}",
        f"qué tiempo va a hacer el {day}",
        f"cuál es el pronóstico para el {day}",
        f"qué tiempo hace en {c} el {day}",
        f"va a llover {when}",
        f"va a llover en {c} el {day}",
        f"va a {rng.choice(['nevar', 'llover', 'hacer sol', 'hacer viento', 'hacer frío', 'hacer calor'])}"
        f" en {c} {when}",
        f"cuánto {rng.choice(['frío', 'calor'])} hace {rng.choice(['fuera', 'afuera', 'en ' + c])}",
        f"qué temperatura hace en {c}",
        f"cuántos grados hace en {c}",
        f"necesito llevar {rng.choice(['paraguas', 'chaqueta', 'abrigo'])} {when}",
        f"a qué hora {rng.choice(['se pone el sol', 'sale el sol', 'amanece', 'anochece'])}"
        f" {rng.choice(['hoy', 'mañana', 'pasado mañana', 'el ' + day])}",
    ])


def _message(rng: random.Random) -> str:
    p, s, news = rng.choice(PEOPLE), rng.choice(PHRASES), rng.choice(NEWS)
    return rng.choice([
        f"manda un mensaje {_a(p)} diciendo {s}",
        f"envíale un mensaje {_a(p)} diciendo {s}",
        f"dile {_a(p)} que {news}",
        f"escríbele {_a(p)} que {news}",
        f"manda un correo {_a(p)} diciendo {s}",
        f"llama {_a(p)}",
        f"llama {_a(p)} con el altavoz",
        f"haz una videollamada {_a(p)}",
        rng.choice(["léeme mis mensajes", "léeme los mensajes nuevos", "lee mis correos", "léeme el último mensaje"]),
        f"me {rng.choice(['llamó', 'ha llamado'])} {p}",
        f"{rng.choice(['responde', 'contesta'])} {_a(p)} que {news}",
    ])


def _navigation(rng: random.Random) -> str:
    place, near, landmark = rng.choice(PLACES), rng.choice(NEARBY), _de(rng.choice(LANDMARKS))
    return rng.choice([
        f"llévame {_a(place)}",
        f"cómo llego {_a(place)}",
        f"dame indicaciones para ir {_a(place)}",
        f"cuánto tardo en llegar {_a(place)}",
        f"a qué distancia está {place}",
        f"busca {near} cerca de {rng.choice(['aquí', 'mí'])}",
        f"dónde está {_definite(near)}",
        f"hay {near} {rng.choice(['cerca', 'por aquí', 'cerca de mí', 'cerca ' + landmark, 'de camino'])}",
        f"cómo está el tráfico para ir {_a(place)}",
        f"evita {rng.choice(['los peajes', 'las autopistas', 'el tráfico'])} de camino {_a(place)}",
        f"{rng.choice(['pide', 'pídeme'])} un taxi para ir {_a(place)}",
    ])


def _time_date(rng: random.Random) -> str:
    c, day, p = rng.choice(CITIES), rng.choice(DAYS), rng.choice(PEOPLE)
    return rng.choice([
        "qué hora es",
        f"qué hora es en {c}",
        "qué día es hoy",
        "qué fecha es hoy",
        "qué día es mañana",
        f"qué fecha es el {day} que viene",
        f"cuántos días faltan para {rng.choice(['el ' + day, 'navidad', 'mi cumpleaños', 'las vacaciones'])}",
        f"qué tengo en el calendario {rng.choice(WHEN)}",
        f"qué tengo en la agenda para el {day}",
        f"añade una reunión con {p} a {_time(rng)}",
        f"añade una reunión con {p} el {day} a {_time(rng)}",
        f"{rng.choice(['cancela', 'borra'])} mi reunión con {p}",
        f"mueve mi reunión con {p} " + ("a " + _time(rng) if rng.random() < 0.5 else "al " + day),
        "cuándo es mi próxima reunión",
    ])


def _home(rng: random.Random) -> str:
    r, climate = _room(rng), rng.choice(["la calefacción", "el aire acondicionado"])
    deg = _count(rng.randint(16, 28) if rng.random() < 0.7 else rng.randint(10, 35), "grado", "grados")
    door = rng.choice(["la puerta principal", "la puerta de atrás", "la puerta del garaje", "la puerta de la calle"])
    blinds, verbs = rng.choice([("las persianas", ["sube", "baja", "abre", "cierra"]),
                                ("las cortinas", ["abre", "cierra", "corre"]), ("las ventanas", ["abre", "cierra"])])
    return rng.choice([
        f"pon la temperatura a {deg}",
        f"pon la calefacción a {deg}",
        f"pon la temperatura {_de(r)} a {deg}",
        f"{rng.choice(['sube', 'baja'])} la temperatura {_de(r)}",
        f"{rng.choice(['enciende', 'apaga', 'sube', 'baja'])} {climate}",
        f"qué temperatura hace en {r}",
        f"{rng.choice(['cierra con llave', 'abre', 'cierra', 'bloquea', 'desbloquea'])} {door}",
        f"está {rng.choice(['cerrada con llave', 'abierta', 'cerrada'])} {door}",
        f"{rng.choice(verbs)} {blinds} {_de(r)}",
        f"pon en marcha {rng.choice(['la aspiradora', 'el lavavajillas', 'la lavadora', 'la cafetera'])}",
        f"precalienta el horno a {number_words(rng.choice([150, 160, 170, 175, 180, 190, 200, 210, 220, 225, 250]))}"
        " grados",
        f"prepárame un {rng.choice(['café', 'café con leche', 'té'])}",
    ])


def _reminder(rng: random.Random) -> str:
    task, t, item = rng.choice(TASKS), _time(rng), rng.choice(ITEMS)
    lst = rng.choice(LISTS)
    return rng.choice([
        f"recuérdame {task} a {t}",
        f"recuérdame {task} {rng.choice(WHEN)}",
        f"recuérdame {task} el {rng.choice(DAYS)}",
        f"{rng.choice(['añade', 'agrega', 'apunta'])} {item} a mi lista de {lst}",
        f"{rng.choice(['añade', 'agrega'])} {item} y {rng.choice(ITEMS)} a la lista de {lst}",
        f"{rng.choice(['quita', 'borra'])} {item} de mi lista de {lst}",
        f"qué hay en mi lista de {lst}",
        f"tengo algún recordatorio {rng.choice(WHEN)}",
        f"qué recordatorios tengo {rng.choice(WHEN)}",
        f"borra el recordatorio de {task}",
    ])


# (one, many, feminine, what it converts to)
_UNITS_FROM = [("milla", "millas", True, ["kilómetros", "metros"]), ("libra", "libras", True, ["kilos", "gramos"]),
               ("pulgada", "pulgadas", True, ["centímetros", "milímetros"]), ("pie", "pies", False, ["metros"]),
               ("taza", "tazas", True, ["litros", "mililitros"]), ("onza", "onzas", True, ["gramos"]),
               ("galón", "galones", False, ["litros"])]


def _misc(rng: random.Random) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 20)
    op = rng.choice(["más", "menos", "por", "dividido entre", "dividido por"])
    one, many, feminine, metrics = rng.choice(_UNITS_FROM)
    metric = rng.choice(metrics)
    phrase = rng.choice(["hola", "gracias", "buenas noches", "adiós", "buenos días", "te quiero"])
    news = rng.choice(["las noticias", "las últimas noticias", "las noticias de deportes"])
    language = rng.choice(["francés", "inglés", "alemán", "italiano", "japonés", "portugués"])
    app = rng.choice(["el calendario", "la cámara", "el navegador", "la calculadora", "los ajustes", "el correo"])
    return rng.choice([
        f"cuánto es {number_words(a)} {op} {number_words(b)}",
        f"calcula {number_words(a)} {op} {number_words(b)}",
        f"convierte {_count(a, one, many, feminine)} a {metric}",
        f"cuántos {metric} son {_count(a, one, many, feminine)}",
        f"cuéntame {rng.choice(['un chiste', 'una historia', 'un dato curioso', 'una adivinanza'])}",
        f"{rng.choice(['dime', 'léeme'])} {news}",
        f"cómo está el tráfico {rng.choice(WHEN)}",
        rng.choice(["para", "cancela", "déjalo", "olvídalo", "vuelve atrás", "repite", "ayuda", "más alto",
                    "más bajo"]),
        f"cómo se dice {phrase} en {language}",
        f"traduce {phrase} al {language}",
        rng.choice(["haz una foto", "saca una foto", "haz una captura de pantalla", "toma una nota"]),
        f"{rng.choice(['abre', 'cierra'])} {app}",
        rng.choice(["cuánta batería queda", "cuánta batería me queda"]),
        f"{rng.choice(['activa', 'desactiva'])} "
        f"{rng.choice(['el bluetooth', 'el wifi', 'el modo no molestar', 'el modo avión'])}",
    ])


# Each command family with a weight: how often it is asked for.
FAMILIES = [(_lights, 3), (_timer, 2), (_alarm, 2), (_music, 3), (_weather, 2), (_message, 2),
            (_navigation, 2), (_time_date, 2), (_home, 2), (_reminder, 2), (_misc, 1)]


def sample(rng: random.Random) -> str:
    """One command, normalized."""
    family = rng.choices([f for f, _ in FAMILIES], weights=[w for _, w in FAMILIES])[0]
    words = family(rng).split()
    if words[0] not in QUESTION_WORDS:
        polite = rng.choice(POLITE)
        if polite in ("puedes ", "podrías "):
            if words[0] in INFINITIVES:
                words[0] = INFINITIVES[words[0]]
            else:  # "temporizador de diez minutos", "ayuda": no verb to put in the infinitive
                polite = "por favor "
        end = rng.choice(POLITE_END if polite != "por favor " else [""])
        if end == " ahora" and _says_when(words):
            end = ""
        words = [polite + " ".join(words) + end]
    return " ".join((rng.choice(WAKE) + " ".join(words)).split())


def generate(n: int, seed: int = 0, max_tries: int = 50) -> list[str]:
    """`n` distinct commands, deterministic given `seed`; raises if the grammar runs out."""
    return distinct(sample, n, seed, max_tries)
