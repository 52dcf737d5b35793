"""A small course chapter written for the course material tests and bench/grounding.py:
six pages on plant biology, and 30 questions, each answered by one fact of one page
(`key`: a word found only in the passage that answers it)."""

PAGES = [
    # page 1
    "Chapter 4. How plants make food\n\n"
    "Photosynthesis is the process by which green plants turn light energy into chemical energy stored in glucose.\n\n"
    "It takes place in the chloroplasts, small green organelles found mostly in the cells of the leaf.\n\n"
    "The green pigment chlorophyll absorbs red and blue light and reflects green light, which is why leaves look green.\n\n"
    "The word equation is: carbon dioxide plus water gives glucose plus oxygen, using light energy.\n\n"
    "Our textbook calls the leaf the plant's kitchen, because that is where the food is made.",
    # page 2
    "Inputs of photosynthesis\n\n"
    "Carbon dioxide enters the leaf through tiny pores called stomata, on the underside of the leaf.\n\n"
    "Guard cells open the stomata during the day and close them at night or when the plant lacks water.\n\n"
    "Water is absorbed from the soil by root hair cells and travels up the stem in the xylem vessels.\n\n"
    "Light is the energy source; on a cloudy day the rate of photosynthesis falls.\n\n"
    "Mineral ions such as nitrate are also taken up by the roots, to make proteins.",
    # page 3
    "Outputs and uses of glucose\n\n"
    "Oxygen is released through the stomata as a waste product; animals use it for respiration.\n\n"
    "Glucose is converted into starch for storage, because starch does not dissolve and does not move out of cells.\n\n"
    "Plants turn glucose into cellulose to build strong cell walls.\n\n"
    "Glucose is carried around the plant as sucrose in the phloem tubes.\n\n"
    "Fruits store sugar to attract animals that spread the seeds.",
    # page 4
    "Limiting factors\n\n"
    "The rate of photosynthesis is limited by whichever factor is in shortest supply: light, carbon dioxide or temperature.\n\n"
    "Above about 45 degrees Celsius the enzymes of photosynthesis are denatured and the rate drops sharply.\n\n"
    "Greenhouse farmers burn paraffin heaters to raise both the temperature and the carbon dioxide level.\n\n"
    "Doubling the light intensity does not double the rate once another factor becomes limiting.\n\n"
    "An aquatic plant such as Elodea gives off bubbles of oxygen that can be counted to measure the rate.",
    # page 5
    "Testing a leaf for starch\n\n"
    "First the leaf is boiled in water for one minute to kill it and break the cell membranes.\n\n"
    "Then it is warmed in ethanol to remove the chlorophyll, so the colour change is easy to see.\n\n"
    "Iodine solution turns blue-black where starch is present and stays orange-brown where there is none.\n\n"
    "A variegated leaf, green and white, shows starch only in the green parts, which proves chlorophyll is needed.\n\n"
    "A plant kept in the dark for two days is destarched before the experiment.",
    # page 6
    "Respiration and the carbon cycle\n\n"
    "Plants respire all the time, day and night, releasing energy from glucose in their mitochondria.\n\n"
    "At the compensation point the rate of photosynthesis equals the rate of respiration, so there is no net gas exchange.\n\n"
    "Decomposers such as fungi return carbon to the air when they break down dead leaves.\n\n"
    "Burning fossil fuels releases carbon that was captured by plants millions of years ago.\n\n"
    "Forests act as carbon sinks, taking in more carbon dioxide than they give out.",
]

# (question, page, key): the key is a word of the one fact that answers it.
QUESTIONS = [
    ("What is photosynthesis?", 1, "glucose"),
    ("Where in the cell does photosynthesis happen?", 1, "chloroplasts"),
    ("Why are leaves green?", 1, "reflects"),
    ("What is the word equation for photosynthesis?", 1, "equation"),
    ("Why does our book call the leaf a kitchen?", 1, "kitchen"),
    ("How does carbon dioxide get into a leaf?", 2, "stomata"),
    ("What do guard cells do?", 2, "Guard"),
    ("How does water reach the leaves?", 2, "xylem"),
    ("Why is there less photosynthesis on a cloudy day?", 2, "cloudy"),
    ("Why do roots take up nitrate?", 2, "nitrate"),
    ("What happens to the oxygen a plant makes?", 3, "waste"),
    ("Why do plants store glucose as starch?", 3, "dissolve"),
    ("What are plant cell walls made from?", 3, "cellulose"),
    ("How is sugar transported in a plant?", 3, "phloem"),
    ("Why do fruits contain sugar?", 3, "seeds"),
    ("What is a limiting factor?", 4, "shortest"),
    ("What happens to photosynthesis when it gets too hot?", 4, "denatured"),
    ("Why do greenhouse farmers use paraffin heaters?", 4, "paraffin"),
    ("Does twice as much light mean twice as much photosynthesis?", 4, "Doubling"),
    ("How can you measure the rate of photosynthesis with pondweed?", 4, "Elodea"),
    ("Why do we boil the leaf first in the starch test?", 5, "boiled"),
    ("Why is the leaf put in ethanol?", 5, "ethanol"),
    ("What colour does iodine turn with starch?", 5, "blue-black"),
    ("What does a variegated leaf show?", 5, "variegated"),
    ("How do you destarch a plant?", 5, "destarched"),
    ("Do plants respire at night?", 6, "mitochondria"),
    ("What is the compensation point?", 6, "compensation"),
    ("What do decomposers do in the carbon cycle?", 6, "Decomposers"),
    ("Where does the carbon in fossil fuels come from?", 6, "fossil"),
    ("Why are forests called carbon sinks?", 6, "sinks"),
]
