"""Questions a maths class (about 13 years old) asks during a lesson, for bench/classroom.py.

Each topic is one question asked in several ways: a real class asks the same thing in
different words while working on the same exercise. Topics that share words but ask
different things (prime numbers / is 1 prime; area / circumference; fractions in general
/ with numbers) are the near misses a grouping must keep apart. ONE_OFFS are asked by one
student each; DISTRESSED are messages a teacher must see first.
"""

TOPICS: dict[str, list[str]] = {
    "prime": [
        "What is a prime number?",
        "Can you explain what prime numbers are?",
        "what's a prime number",
        "What does prime number mean?",
        "I don't understand what a prime number is",
    ],
    "one_prime": [
        "Is 1 a prime number?",
        "Why isn't 1 a prime number?",
        "Is 1 prime or not?",
    ],
    "add_fractions": [
        "How do I add fractions with different denominators?",
        "How do you add two fractions when the bottom numbers are different?",
        "How to add fractions that don't have the same denominator?",
        "What do I do to add fractions with different denominators?",
    ],
    "half_plus_third": [
        "How do I add 1/2 and 1/3?",
        "What is 1/2 + 1/3?",
        "how do you do 1/2 + 1/3",
    ],
    "circle_area": [
        "How do I find the area of a circle?",
        "What is the formula for the area of a circle?",
        "How do you calculate the area of a circle?",
    ],
    "circumference": [
        "How do I find the circumference of a circle?",
        "What's the formula for the perimeter of a circle?",
        "How do you work out the circumference of a circle?",
    ],
    "pythagoras": [
        "What is the Pythagorean theorem?",
        "Can you explain Pythagoras' theorem?",
        "How does the Pythagorean theorem work?",
    ],
    "equation": [
        "How do I solve 3x + 5 = 20?",
        "How to solve 3x+5=20?",
        "I'm stuck on 3x + 5 = 20, how do I solve it?",
    ],
    "negatives": [
        "Why is a negative times a negative a positive?",
        "Why does multiplying two negative numbers give a positive number?",
        "Why is negative times negative positive?",
    ],
    "simplify": [
        "How do I simplify a fraction?",
        "How do you reduce a fraction to its simplest form?",
        "How can I simplify fractions?",
    ],
    "mean_median": [
        "What is the difference between the mean and the median?",
        "How is the median different from the mean?",
        "What's the difference between mean and median?",
    ],
    "exercise": [
        "I don't understand exercise 4 on page 52",
        "Can you help me with exercise 4 on page 52?",
        "How do I do exercise 4 page 52?",
    ],
    "premier_fr": [
        "C'est quoi un nombre premier ?",
        "Qu'est-ce qu'un nombre premier ?",
        "Je ne comprends pas ce qu'est un nombre premier",
    ],
    "fractions_fr": [
        "Comment additionner des fractions qui n'ont pas le même dénominateur ?",
        "Comment on additionne deux fractions avec des dénominateurs différents ?",
    ],
}

ONE_OFFS: list[str] = [
    "Can you check my answer: 3/4 + 1/8 = 7/8?",
    "What is the square root of 144?",
    "Why do we even need algebra?",
    "What is the order of operations?",
    "How many degrees are there in a triangle?",
    "What is a ratio?",
    "How do I convert 0.75 into a fraction?",
    "What is the difference between a square and a rectangle?",
    "How do I multiply two fractions?",
    "What does 'factor' mean in maths?",
    "How do I round 3.456 to one decimal place?",
    "Is zero an even number?",
    "How do I find the volume of a cube?",
    "What is an isosceles triangle?",
    "How do I divide 7 by 1/2?",
    "What is the lowest common multiple of 4 and 6?",
    "Comment calculer l'aire d'un triangle ?",
    "Pourquoi on ne peut pas diviser par zéro ?",
]

DISTRESSED: list[str] = [
    "I'm so stressed about this test, I can't cope and I keep crying",
    "Je n'en peux plus, tout le monde se moque de moi en classe",
]
