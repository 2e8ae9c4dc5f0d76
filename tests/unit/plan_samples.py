"""Sample plan files shared by the plan and plan-CLI unit tests."""

from __future__ import annotations

# The llm + consensus + code plan of issue 2 (line numbers matter to the tests).
DUCK_YAML = """\
schema_version: 1
name: duck-eggs
description: optional text
inputs:  {question: string}            # input name -> type
outputs: {answer: compute.answer}      # output name -> reference
nodes:
  - id: extract
    kind: llm
    model: student
    inputs: {question: input.question}
    system: "You extract quantities from word problems."
    prompt: "Problem: {{ question }}"
    output_schema: {type: object, properties: {eggs: {type: number}}, required: [eggs]}
    temperature: 0.0
    max_tokens: 256
  - id: extract_vote
    kind: consensus
    of: extract
    n: 5
    temperature: 0.7
    vote: majority
  - id: compute
    kind: code
    inputs: {eggs: extract_vote.eggs}
    code: |
      def run(eggs):
          return {"answer": eggs * 2}
metadata:
  teacher: local:qwen-coder-1.5b
  history:
    - {iteration: 1, change: "wrap extract in consensus", loss: 0.2}
"""

# A longer plan: multi-line prompt and system, a free-text llm node, declared code outputs.
REPORT_YAML = """\
schema_version: 1
name: report
inputs: {question: string, limit: integer}
outputs: {answer: check.answer, note: explain.text}
nodes:
  - id: explain
    kind: llm
    model: student
    inputs: {question: input.question}
    system: |
      You are careful.
      Think step by step.
    prompt: |
      Question: {{ question }}
      {% for word in question.split() %}- {{ word }}
      {% endfor %}
    temperature: 0.2
  - id: check
    kind: code
    inputs: {text: explain.text, limit: input.limit}
    outputs: [answer]
    code: |
      import math


      def run(text, limit=10):
          n = len(text)
          return {"answer": min(n, limit) + math.floor(0.5)}
"""
