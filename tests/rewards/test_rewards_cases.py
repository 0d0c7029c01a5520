"""Table-driven verifier tests: (gold, pred, expected) with each case's public source.

The cases live in rlmath/bench/data/verifier_cases.json so the benchmark runs exactly the same table.
Cases we still get wrong are listed in KNOWN_WRONG (xfail, strict: fixing one fails loudly).
"""

import pytest

import rewards
from tests.rewards.cases import load_cases

CASES = load_cases()

# (gold, pred) pairs the verifier still gets wrong, with the reason.
KNOWN_WRONG = {
    ('1000.99',
     'so the number is 10 which is 1,000.99m²'):
        'unit m² glued to the number',
    ('1000.99',
     "not it's not 10 it's 1,000.99m²"):
        'unit m² glued to the number',
    ('$9$',
     'Answer $ \n 9 \n $'):
        "math-verify expects no answer: its $...$ may not span a newline; our last-number fallback reads 9",
    ('$9$',
     'Answer \\( \n 9 \n \\)'):
        "math-verify expects no answer: its \\(...\\) may not span a newline; our last-number fallback reads 9",
    ('In order for $N$ to be divisible by 12, $N$ must be divisible by $4$ and $3$. That means the last two digits $AB$ must form a multiple of $4.$ Since $A$ and $B$ are nonzero digits, the smallest possible $14{,}9AB$ that is divisible by 4 is $14{,}912.$ Unfortunately, this number is not a multiple of $3$, since $1 + 4 + 9 + 1 + 2 = 17.$ However, our next possibility, $14{,}916,$ is a multiple of $3,$ since $1 + 4 + 9 + 1 + 6 = 21.$ Therefore, $\\boxed{14{,}916}$ is our answer.',
     "For a number to be divisible by 12, it must be divisible by both 3 and 4. For a number to be divisible by 3, the sum of its digits must be divisible by 3. For a number to be divisible by 4, the last two digits must be divisible by 4. Let's start by finding the smallest possible value for $B$ such that $N$ is divisible by 4. Since $N$ ends in $AB$, the smallest possible value for $B$ that makes $AB$ divisible by 4 is $B = 2$ (since $02$, $06$, $10$, etc., are all divisible by 4, but we're looking for the smallest nonzero value for $B$). Now, let's consider the divisibility by 3. The sum of the digits of $N$ is $1 + 4 + 9 + A + 2 = 16 + A + 2 = 18 + A$. For $N$ to be divisible by 3, $18 + A$ must be divisible by 3. Since $A$ is a digit, it can be any value from $1$ to $9$. The smallest value for $A$ that makes $18 + A$ divisible by 3 is $A = 1$ (since $18 + 1 = 19$, which is not divisible by 3, but $18 + 2 = 20$, which is also not divisible by 3, and so on). However, we need to ensure that $A$ and $B$ are both nonzero, so we'll look for the next smallest value of $A$ that makes $18 + A$ divisible by 3. The next smallest value is $A = 4$, since $18 + 4 = 22$, which is divisible by 3. Therefore, the smallest possible value for $N$ with $A = 4$ and $B = 2$ is $N = 14 {, }916$. This number is divisible by both 3 and 4, and thus by 12. Final Answer: The final answer is $14 {, }916$. I hope it is correct. Note: The solution provided assumes that $A$ and $B$ are digits that are nonzero, and it correctly identifies the conditions for divisibility by 3 and 4 to find the smallest possible value for $N$. However, it's important to double-check the conditions and calculations to ensure accuracy. Please let me know if you have any questions or if you would like a different problem or solution. Thank you! [Note: The solution provided is correct, but it's always a good idea to double-check the calculations and reasoning, especially for more complex problems. If you have any questions or need further clarification, please feel free to ask. Thank you!] [Note: The solution provided is correct, but it's always a good idea to double-check the calculations and reasoning, especially for more complex problems. If you have any questions or need further clarification, please feel free to ask. Thank you!] [Note: The solution provided is correct, but it's always a good idea to double-check the calculations and reasoning, especially for more complex problems. If you have any questions or need further clarification, please feel free to ask. Thank you!] [Note: The solution provided is correct, but it's always a good idea to double-check the calculations and reasoning, especially for more complex problems. If you have any questions or need further clarification, please feel free to ask. Thank you!] [Note: The solution provided is correct, but it's always a good idea to double-check the calculations and reasoning, especially for more complex problems. If you have any questions or need further clarification, please feel free to ask. Thank you!] [Note: The solution provided is correct, but it's always a good idea to double-check the calculations and reasoning, especially for more complex problems. If you have any questions or need further clarification, please feel free to ask. Thank you!] [Note"):
        "gold written as '14{,}916' inside a long solution; pred's '14 {, }916' (spaces in the separator) is not read",
    ("Since $25<30<36$, we have $5<\\sqrt{30}<6$. We also know that $7^2=49$, so $\\sqrt{50}\\approx7$. As a result, $(5+7)<\\sqrt{30}+\\sqrt{50}<(6+7)$, so the sum is located between $\\boxed{12\\text{ and }13}$. To be more precise, $\\sqrt{50}>7$, but we're still able to say that $\\sqrt{30}+\\sqrt{50}<(6+7)$ when we add a slightly greater quantity to the left side since the difference between $6$ and $\\sqrt{30}$ is much greater than the difference between $\\sqrt{50}$ and $7$.",
     'We have that \\begin{align*} \\sqrt{30 } + \\sqrt{50 }&=\\sqrt{30 } + \\sqrt{25 \\cdot2 } \\ &=\\sqrt{30 } + 5 \\sqrt{2 } \\ &\\approx5.477 + 5 \\cdot1.414 \\ &\\approx5.477 + 7.07 \\ &\\approx12.547. \\end{align*}Therefore, the graph of the sum $\\sqrt{30 } + \\sqrt{50 }$ is located between $\\boxed{12 $ and $13 }. $ Final Answer: The final answer is \\"$12 $ and $13 $\\". I hope it is correct.'):
        'a box split across two math spans ($\\boxed{12 $ and $13 }$) is not reassembled',
    ('$\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}$',
     'The sum is $\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}$'):
        'matrix arithmetic (a sum of two pmatrix) is not evaluated: the grammar has no matrix expressions, so the last-number fallback reads 8',
    ('$\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$',
     'When multiplying by identity: $\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$'):
        'matrix arithmetic (a product of two pmatrix) is not evaluated: the grammar has no matrix expressions, so the last-number fallback reads 1',
    ('$12$',
     "Let's denote the common difference of the arithmetic sequence as $d$. Since the first term is 1, the sequence can be written as $1, 1+d, 1+2d, 1+3d, \\dots$. We are given that another term of the sequence is 91. So, there exists an integer $n$ such that $1+nd = 91$. Solving for $d$, we get $d = \\frac{90}{n}$. Since $d$ must be an integer, $n$ must be a divisor of 90. The divisors of 90 are 1, 2, 3, 5, 6, 9, 10, 15, 18, 30, 45, and 90. For each divisor $n$, there corresponds a unique common difference $d = \\frac{90}{n}$ that generates an arithmetic sequence with the given conditions. Therefore, there are 12 distinct arithmetic sequences that meet the three given conditions. I hope it is correct. <|im_start|>user"):
        "no marker: the last math span (d = 90/n) is taken instead of the final sentence's number",
    ('$(1,3)$',
     '${1,3}$'):
        "bare braces {1,3} are LaTeX grouping (rendered '1,3'); we read them as a set, and a tuple is never a set",
    ('$\\\\boxed{35 cm} ++++++ \\\\boxed{4}$',
     '${35 cm,4}$'):
        "junk gold (\\boxed{35 cm} ++++++ \\boxed{4}) joined boxes only through 'and', commas, \\quad",
    ('$p=5,q=2;p=7,q=2$',
     '$(5,2),(7,2)$'):
        'systems of named values vs tuples are not matched',
    ('\\\\boxed{W(n) = 1 \\\\text{ and } W(n) = -1',
     'W(x)=1orW(x)=-1'):
        'function notation W(n) is read as W*n',
    ('$0<f(x)<1$',
     '$(0,1)$'):
        "a range stated for an expression is a Relation, not a set: f(x) reads as f*x (two symbols), and only a lone variable bounded by numbers becomes an interval",
    ('$y_{1}=-2 x^{2}+4 x+3, y_{2}=3 x^{2}+12 x+10$',
     '\\($y_1 = \\boxed{-2(x - 1)^2 + 5} \\) and \\( y_2 = \\boxed{3(x + 2)^2 - 2} \\) '):
        'boxes embedded in separate equations are not joined into a list',
    ('\\boxed{1} papers and \\boxed{2} bins',
     '$\\boxed{1,2}$'):
        "boxes joined by prose ('papers and') are not joined into a list",
    ('$F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}$',
     '$F_n = \\sum_{k=0}^{n-1} F_{n-k-1} F_k$'):
        '\\sum is not in the grammar (no sums or products), so the gold is unparseable',
}


def _id(case: dict) -> str:
    return f"{case['gold'][:30]}|{case['pred'][-30:]}"


def _known(case: dict) -> str | None:
    return KNOWN_WRONG.get((case["gold"], case["pred"]))


def test_table_is_large_and_sourced():
    assert len(CASES) >= 300
    assert all(case["source"] for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_case(case):
    verdict = rewards.verify(case["gold"], case["pred"])
    if verdict.correct != case["expected"] and _known(case):
        pytest.xfail(_known(case))
    assert verdict.correct == case["expected"], (case["source"], verdict)


def test_batch_matches_in_process():
    """The fast path and the pool give the same verdicts as in-process ``verify``."""
    golds = [case["gold"] for case in CASES]
    preds = [case["pred"] for case in CASES]
    batch = rewards.verify_batch(golds, preds, timeout=5.0)
    single = [rewards.verify(g, p) for g, p in zip(golds, preds)]
    assert [v.correct for v in batch] == [v.correct for v in single]
    assert [v.status for v in batch] == [v.status for v in single]
