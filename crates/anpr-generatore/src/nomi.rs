//! Name, surname and street lists with relative frequencies.
//!
//! Built by hand from public statistics about the most frequent Italian first names and
//! surnames (ISTAT name statistics, surname frequency rankings): only the *ranking* is
//! used, as a weight, never data about a real person. The weights roughly follow the
//! published shares (a few very frequent entries, a long tail), which is what makes
//! homonyms and omocodia appear at realistic rates.

/// `(surname, weight)`. Apostrophes and accents are deliberate: they exercise escaping,
/// folding and the tax code's name rules.
pub(crate) const COGNOMI: &[(&str, u32)] = &[
    ("Rossi", 90), ("Russo", 70), ("Ferrari", 60), ("Esposito", 58), ("Bianchi", 55),
    ("Romano", 52), ("Colombo", 50), ("Ricci", 45), ("Marino", 44), ("Greco", 42),
    ("Bruno", 40), ("Gallo", 40), ("Conti", 38), ("De Luca", 37), ("Mancini", 36),
    ("Costa", 35), ("Giordano", 35), ("Rizzo", 34), ("Lombardi", 33), ("Moretti", 32),
    ("Barbieri", 30), ("Fontana", 30), ("Santoro", 29), ("Mariani", 29), ("Rinaldi", 28),
    ("Caruso", 28), ("Ferrara", 27), ("Galli", 27), ("Martini", 26), ("Leone", 26),
    ("Longo", 25), ("Gentile", 25), ("Martinelli", 24), ("Vitale", 24), ("Lombardo", 24),
    ("Serra", 23), ("Coppola", 23), ("De Santis", 22), ("D'Angelo", 22), ("Marchetti", 21),
    ("Parisi", 21), ("Villa", 21), ("Conte", 20), ("Ferraro", 20), ("Ferri", 20),
    ("Fabbri", 19), ("Bianco", 19), ("Marini", 19), ("Grasso", 18), ("Valentini", 18),
    ("Messina", 18), ("Sala", 17), ("De Angelis", 17), ("Gatti", 17), ("Pellegrini", 17),
    ("Palumbo", 16), ("Sanna", 16), ("Farina", 16), ("Rizzi", 16), ("Monti", 15),
    ("Cattaneo", 15), ("Morelli", 15), ("Amato", 15), ("Silvestri", 14), ("Mazza", 14),
    ("Testa", 14), ("Grassi", 14), ("Pellegrino", 13), ("Carbone", 13), ("Giuliani", 13),
    ("Benedetti", 13), ("Barone", 13), ("Rossetti", 12), ("Caputo", 12), ("Montanari", 12),
    ("Guerra", 12), ("Palmieri", 12), ("Bernardi", 11), ("Martino", 11), ("Fiore", 11),
    ("De Rosa", 11), ("Ferretti", 11), ("Bellini", 11), ("Basile", 10), ("Riva", 10),
    ("Donati", 10), ("Piras", 10), ("Vitali", 10), ("Battaglia", 10), ("Sartori", 10),
    ("Neri", 9), ("Costantini", 9), ("Milani", 9), ("Pagano", 9), ("Ruggiero", 9),
    ("Sorrentino", 9), ("D'Amico", 9), ("Orlando", 9), ("Damico", 8), ("Negri", 8),
    ("Dell'Acqua", 6), ("Lo Russo", 6), ("Di Stefano", 8), ("Di Pietro", 7), ("Cocco", 6),
    ("Niccolò", 3), ("Cerè", 3), ("Sciarrà", 3), ("Lamberti", 7), ("Pace", 7),
];

/// `(name, weight)` for men.
pub(crate) const NOMI_MASCHILI: &[(&str, u32)] = &[
    ("Giuseppe", 90), ("Giovanni", 70), ("Antonio", 70), ("Mario", 60), ("Luigi", 50),
    ("Francesco", 55), ("Angelo", 35), ("Vincenzo", 35), ("Pietro", 30), ("Salvatore", 35),
    ("Carlo", 30), ("Franco", 28), ("Domenico", 25), ("Bruno", 22), ("Paolo", 30),
    ("Michele", 22), ("Giorgio", 22), ("Aldo", 12), ("Sergio", 18), ("Luciano", 16),
    ("Alessandro", 40), ("Andrea", 38), ("Marco", 38), ("Luca", 35), ("Matteo", 30),
    ("Lorenzo", 28), ("Leonardo", 30), ("Davide", 22), ("Simone", 20), ("Federico", 20),
    ("Riccardo", 18), ("Stefano", 24), ("Roberto", 26), ("Massimo", 22), ("Fabio", 18),
    ("Daniele", 18), ("Gabriele", 18), ("Tommaso", 16), ("Edoardo", 14), ("Nicolò", 10),
    ("Gian Luca", 4), ("Pier Paolo", 4), ("Mattia", 16), ("Diego", 8), ("Emanuele", 10),
];

/// `(name, weight)` for women.
pub(crate) const NOMI_FEMMINILI: &[(&str, u32)] = &[
    ("Maria", 90), ("Anna", 60), ("Giuseppina", 35), ("Rosa", 30), ("Angela", 28),
    ("Giovanna", 28), ("Teresa", 22), ("Lucia", 24), ("Carmela", 18), ("Caterina", 16),
    ("Francesca", 35), ("Antonietta", 14), ("Carla", 14), ("Elena", 22), ("Concetta", 12),
    ("Rita", 14), ("Margherita", 12), ("Franca", 10), ("Paola", 22), ("Laura", 24),
    ("Giulia", 35), ("Sofia", 32), ("Aurora", 22), ("Alice", 22), ("Ginevra", 16),
    ("Emma", 18), ("Giorgia", 18), ("Martina", 22), ("Chiara", 24), ("Sara", 24),
    ("Valentina", 20), ("Silvia", 18), ("Federica", 16), ("Alessandra", 18), ("Elisa", 16),
    ("Beatrice", 14), ("Noemi", 10), ("Greta", 10), ("Matilde", 10), ("Maria Grazia", 6),
    ("Anna Maria", 8), ("Nicoletta", 6), ("Simona", 12), ("Monica", 12), ("Barbara", 12),
];

/// Street names (`denominazioneToponimo`).
pub(crate) const STRADE: &[&str] = &[
    "Roma", "Garibaldi", "Mazzini", "Cavour", "Vittorio Emanuele II", "Dante Alighieri",
    "XX Settembre", "Marconi", "Matteotti", "Verdi", "Kennedy", "Gramsci", "della Repubblica",
    "dei Mille", "IV Novembre", "Manzoni", "San Francesco", "della Libertà", "Milano",
    "Nazionale", "Umberto I", "Diaz", "Trieste", "Trento", "Leopardi", "Carducci", "Pascoli",
    "delle Rose", "dei Tigli", "del Mare", "dell'Industria", "degli Alpini", "Don Minzoni",
];

/// Street kinds (`specie`, table "Specie toponimo" wording).
pub(crate) const SPECIE: &[&str] = &["VIA", "VIA", "VIA", "VIA", "PIAZZA", "CORSO", "VIALE", "LARGO"];

/// Municipalities with the largest resident population (ISTAT, rounded thousands), used
/// to weight the places of birth of people not born where they live.
pub(crate) const GRANDI_COMUNI: &[(&str, u32)] = &[
    ("058091", 2750), // Roma
    ("015146", 1370), // Milano
    ("063049", 910),  // Napoli
    ("001272", 850),  // Torino
    ("082053", 630),  // Palermo
    ("010025", 560),  // Genova
    ("037006", 390),  // Bologna
    ("048017", 360),  // Firenze
    ("072006", 315),  // Bari
    ("087015", 300),  // Catania
    ("023091", 255),  // Verona
    ("027042", 250),  // Venezia
    ("083048", 220),  // Messina
    ("028060", 205),  // Padova
    ("032006", 200),  // Trieste
];
