import json, random, sys
rnd = random.Random(7)
out = open(sys.argv[1], 'w', encoding='utf-8')
def text(n):
    alphabet = "abc déf ñ 中文 😀 \"\\\n\t/"
    return ''.join(rnd.choice(alphabet) for _ in range(n))
lines = []
lines.append({"sample_id": 0, "questions": ["", "a", "é", "ÿ", "Ā", "q"], "positive_contexts": [{"title": "", "text": ""}, {"title": "a", "text": "x"}], "hardneg_contexts": []})
lines.append({"sample_id": 2**70, "questions": [text(300)], "positive_contexts": [{"title": "t", "text": "y" * 70000}], "hardneg_contexts": [{"title": "t2", "text": text(20000)} for _ in range(8)]})
lines.append({"sample_id": -5, "questions": [list(range(1200)), [], [7]], "positive_contexts": [{"title": [1, 2], "text": [300, 70000, 2**40, -3]}], "hardneg_contexts": [], "extra": {"score": 1.5, "flag": True, "none": None, "neg": -2**31, "big": -2**200}})
lines.append({"hardneg_contexts": [], "sample_id": 65536, "positive_contexts": [{"text": "b", "title": "a", "passage_id": "123"}], "questions": ["title", "text", "sample_id"]})
lines.append({"sample_id": 3, "questions": [text(50) for _ in range(1001)], "positive_contexts": [{"title": "T", "text": text(100)} for _ in range(3)], "hardneg_contexts": [{"title": "T", "text": text(100)} for _ in range(1000)]})
for l in lines:
    out.write(json.dumps(l, ensure_ascii=rnd.random() < 0.5) + "\n")
# raw lines exercising escapes python accepts
out.write('{"sample_id": 9, "questions": ["\\ud83d\\ude00 pair", "lone \\ud800 high", "\\u00e9\\u0000"], "positive_contexts": [{"title": "\\/", "text": "1e5"}], "hardneg_contexts": [], "f": [1e5, 1.0, -0.0, 1E-7, 123456789012345678901234567890, NaN, Infinity, -Infinity]}\n')
out.write('\n')
out.write('  {"sample_id":10,"questions":[],"positive_contexts":[],"hardneg_contexts":[]}  \n')
