#!/usr/bin/env python3
"""Chat templates rendered by Jinja2 exactly as Hugging Face's apply_chat_template renders them
(an ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, `raise_exception` and a
`tojson` that keeps non-ASCII), for ChatTemplateTests.swift.

The templates: Qwen2.5's and SmolLM2's (from their GGUF files, Apache-2.0), and three written here
to exercise what other models' templates use (Gemma's alternation check and `namespace`, Llama's
`messages[1:]` and `| trim`, filters, tests, loop variables, whitespace control, comments). Writes
chat_templates.json next to this script: each template with its renderings of several message lists,
or the error it raised.

    pip install jinja2 gguf
    python Tests/TransformerKitTests/Fixtures/chat-templates/make_chat_template_fixture.py \
        QWEN2_GGUF SMOLLM2_GGUF
"""
import json
import os
import sys

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))

ALTERNATING = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] | trim + '\\n\\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""

NAMESPACE = """{# a namespace carries state out of the loop #}
{% set ns = namespace(system='', turns=0, last=none) %}
{% for m in messages %}
  {% if m.role == 'system' %}{% set ns.system = m.content %}{% else %}{% set ns.turns = ns.turns + 1 %}{% endif %}
  {% set ns.last = m.role %}
{% endfor %}
<<SYS>>{{ ns.system | default('none', true) }}<</SYS>> turns={{ ns.turns }} last={{ ns.last }}
{% for m in messages if m.role != 'system' %}
[{{ loop.index }}/{{ loop.length }}{% if loop.first %} first{% endif %}{% if loop.last %} last{% endif %}] {{ m.role | upper }}: {{ m.content.strip() }}
{% else %}
(no turns)
{% endfor %}
{%- if add_generation_prompt %}ASSISTANT:{% endif %}
"""

EXPRESSIONS = """{%- set xs = [1, 2, 3] -%}
{{ xs | length }} {{ xs | join('-') }} {{ xs[0] + xs[-1] }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 'ab' ~ 3 }} {{ 'x' * 3 }}
{{ 'b' in 'abc' }} {{ 4 not in xs }} {{ none is none }} {{ undefined_name is defined }} {{ xs is iterable }}
{{ {'k': 'v', 'a': [1, "é\\n"]} | tojson }} {{ 'A' if xs else 'B' }} {{ "it's" }} {{ 'Hello World'.lower().startswith('hello') }}
{%- for k, v in {'one': 1, 'two': 2}.items() %} {{ k }}={{ v }}{% endfor %}
{% for i in range(3) %}{{ i }}{% if not loop.last %},{% endif %}{% endfor %} {{ messages | length }}
{{ messages[0].content | trim | capitalize }} {{ (messages | last).role }} {{ 'a,b' .split(',') | first }}
   {%- if true %}  lstrip and trim_blocks:
    {% endif %}
  kept {{- ' (minus strips)' -}}   done
"""


def render(source, messages, add_generation_prompt=True):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                          bos_token="<bos>", eos_token="<eos>")


def gguf_template(path):
    from gguf import GGUFReader
    f = GGUFReader(path).fields["tokenizer.chat_template"]
    return bytes(f.parts[f.data[0]]).decode()


MESSAGE_LISTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "  Be terse.  "},
     {"role": "user", "content": "Name a prime."},
     {"role": "assistant", "content": "7"},
     {"role": "user", "content": "Another? é 😀 \"quoted\" {{ not a tag }}"}],
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    [{"role": "system", "content": "only a system message"}],
]


def main():
    templates = {"qwen2.5": gguf_template(sys.argv[1]), "smollm2": gguf_template(sys.argv[2]),
                 "alternating": ALTERNATING, "namespace": NAMESPACE, "expressions": EXPRESSIONS}
    out = {"generator": "Tests/TransformerKitTests/Fixtures/chat-templates/make_chat_template_fixture.py",
           "jinja2_version": jinja2.__version__, "templates": []}
    for name, source in templates.items():
        cases = []
        for messages in MESSAGE_LISTS:
            for agp in (True, False):
                try:
                    cases.append({"messages": messages, "add_generation_prompt": agp,
                                  "rendered": render(source, messages, agp)})
                except jinja2.exceptions.TemplateError as e:
                    cases.append({"messages": messages, "add_generation_prompt": agp, "error": str(e)})
        out["templates"].append({"name": name, "source": source, "cases": cases})
    with open(os.path.join(HERE, "chat_templates.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
