"""The requests capture.py sends to every vLLM version, and what the fake model answers.

Plain data (standard library only), shared by all versions. Four kinds:

* `RENDER`: request bodies whose rendered prompt (token ids) is recorded. The fake model answers
  `final: ok`.
* `RESPONSES`: a request body plus the harmony text the model generates after the prompt's
  `<|start|>assistant`, written with its special tokens. `cut_after` makes a `length` cut: the
  generated token list is truncated after the tokens of that prefix of `generated` (capture
  checks the prefix is a whole-token prefix). Without it the finish reason is `stop`. Each case
  runs twice: as written (non-streaming) and with `"stream": true` plus `stream_extra`.
* `ERRORS`: requests vLLM refuses (or, on some versions, accepts): method, path, JSON body or raw
  content, optional API key configured on the server.
* `ENDPOINTS`: plain GETs.

A case may carry `"only": [versions]` with a `"why"`: other versions record it as skipped.
"""

from __future__ import annotations

from typing import Any

MODEL = "openai/gpt-oss-20b"

# --------------------------------------------------------------------------- tools

_CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
_RICH_PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name, e.g. Zürich"},
        "unit": {"type": "string", "enum": ["c", "f"]},
        "days": {"type": "integer"},
    },
    "required": ["city"],
}

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get weather",
    "parameters": _CITY,
}
NO_PARAMETERS = {
    "type": "function",
    "name": "get_time",
    "description": "Current time",
    "parameters": None,
}
NO_DESCRIPTION = {"type": "function", "name": "lookup", "parameters": _CITY}
EMPTY_OBJECT = {
    "type": "function",
    "name": "ping",
    "description": "Ping",
    "parameters": {"type": "object", "properties": {}},
}
RICH = {
    "type": "function",
    "name": "forecast",
    "description": "Weather forecast",
    "parameters": _RICH_PARAMETERS,
}
STRICT = {**WEATHER, "strict": True}


def chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """The Chat Completions form of a Responses function tool."""
    function = {k: v for k, v in tool.items() if k not in ("type", "parameters")}
    if tool.get("parameters") is not None:
        function["parameters"] = tool["parameters"]
    return {"type": "function", "function": function}


C_WEATHER = chat_tool(WEATHER)

# --------------------------------------------------------------------------- input items


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def reasoning(text: str) -> dict[str, Any]:
    return {
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def said(text: str) -> dict[str, Any]:
    """An assistant message item (a final answer or a preamble, replayed)."""
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def call(call_id: str, arguments: str, name: str = "get_weather") -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def output(call_id: str, text: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def responses(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, **fields}


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": list(messages), **fields}


def tool_call(call_id: str, arguments: str, name: str = "get_weather") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# --------------------------------------------------------------------------- render cases

_PARIS = '{"city": "Paris"}'
_ZURICH = '{"city": "Zürich"}'
_UNICODE_QUESTION = "Wetter in Zürich? 天気は\uff1f 🌦"  # a CJK (full-width) question mark
_UNICODE_OUTPUT = "☀️ 15°C, 晴れ — 東京 is sunny too 🌤"

RENDER: list[dict[str, Any]] = [
    {"id": "responses.string_input", "api": "responses", "body": responses(input="Hi")},
    {
        "id": "responses.multi_turn_reasoning",
        "note": "analysis before the last final answer is dropped, analysis after it is kept",
        "api": "responses",
        "body": responses(
            tools=[WEATHER],
            input=[
                user("Hi"),
                reasoning("old thought"),
                said("Hello!"),
                user("Weather in Paris?"),
                reasoning("Need weather."),
                call("call_1", _PARIS),
                output("call_1", '{"t": 15}'),
                reasoning("Got it."),
            ],
        ),
    },
    {
        "id": "responses.two_finals",
        "api": "responses",
        "body": responses(
            input=[
                user("q1"),
                reasoning("r1"),
                said("a1"),
                user("q2"),
                reasoning("r2"),
                said("a2"),
                user("q3"),
            ]
        ),
    },
    {
        "id": "responses.parallel_tool_calls",
        "api": "responses",
        "body": responses(
            tools=[WEATHER],
            input=[
                user("Weather in Paris and Bern?"),
                reasoning("Two calls."),
                call("call_p", _PARIS),
                call("call_b", '{"city": "Bern"}'),
                output("call_p", "15C"),
                output("call_b", "12C"),
            ],
        ),
    },
    {
        "id": "responses.system_leading",
        "api": "responses",
        "body": responses(input=[{"role": "system", "content": "You are terse."}, user("Hi")]),
    },
    {
        "id": "responses.developer_leading",
        "api": "responses",
        "body": responses(input=[{"role": "developer", "content": "Dev rules."}, user("Hi")]),
    },
    {
        "id": "responses.instructions_only",
        "api": "responses",
        "body": responses(instructions="Be brief.", input="Hi"),
    },
    {
        "id": "responses.instructions_and_tools",
        "api": "responses",
        "body": responses(instructions="Be brief.", tools=[WEATHER], input="Hi"),
    },
    {
        "id": "responses.instructions_and_system_leading",
        "api": "responses",
        "body": responses(
            instructions="Be brief.",
            tools=[WEATHER],
            input=[{"role": "system", "content": "You are terse."}, user("Hi")],
        ),
    },
    {
        "id": "responses.system_and_developer_later",
        "api": "responses",
        "body": responses(
            instructions="Be brief.",
            reasoning={"effort": "low"},
            tools=[WEATHER, NO_PARAMETERS],
            input=[
                {"role": "system", "content": "SYS later"},
                user("Hi"),
                reasoning("old thought"),
                said("Hello!"),
                {"role": "developer", "content": "DEV later"},
                user("Weather in Paris?"),
                reasoning("Need weather."),
                call("call_1", _PARIS),
                output("call_1", '{"t":15}'),
            ],
        ),
    },
    {
        "id": "responses.replayed_preamble",
        "note": "a replayed preamble becomes a final message, so the reasoning before it drops",
        "api": "responses",
        "body": responses(
            tools=[WEATHER],
            input=[
                user("Weather?"),
                reasoning("Call it."),
                said("Let me check."),
                call("c1", '{"city":"Paris"}'),
                output("c1", "15C"),
            ],
        ),
    },
    {
        "id": "responses.tool_shapes",
        "api": "responses",
        "body": responses(tools=[WEATHER, NO_PARAMETERS, EMPTY_OBJECT, RICH], input="Hi"),
    },
    {
        "id": "responses.tool_without_description",
        "api": "responses",
        "body": responses(tools=[NO_DESCRIPTION], input="Hi"),
    },
    *[
        {
            "id": f"responses.reasoning_effort_{effort}",
            "api": "responses",
            "body": responses(reasoning={"effort": effort}, input="Hi"),
        }
        for effort in ("low", "medium", "high")
    ],
    {
        "id": "responses.reasoning_without_effort",
        "api": "responses",
        "body": responses(reasoning={"summary": "auto"}, input="Hi"),
    },
    {
        "id": "responses.unicode",
        "api": "responses",
        "body": responses(
            tools=[WEATHER],
            input=[
                user(_UNICODE_QUESTION),
                reasoning("Rufe das Tool für Zürich auf."),
                call("call_z", _ZURICH),
                output("call_z", _UNICODE_OUTPUT),
            ],
        ),
    },
    *[
        {
            "id": f"responses.tool_choice_{name}",
            "api": "responses",
            "body": responses(tools=[WEATHER, NO_PARAMETERS], tool_choice=choice, input="Hi"),
        }
        for name, choice in (
            ("none", "none"),
            ("required", "required"),
            ("named", {"type": "function", "name": "get_weather"}),
        )
    ],
    {
        "id": "responses.strict_tool",
        "api": "responses",
        "body": responses(tools=[STRICT], input="Hi"),
    },
    {
        "id": "responses.parallel_tool_calls_false",
        "api": "responses",
        "body": responses(tools=[WEATHER], parallel_tool_calls=False, input="Hi"),
    },
    # ------------------------------------------------------------------ chat
    {
        "id": "chat.assistant_content_reasoning_tool_calls",
        "api": "chat",
        "body": chat(
            {"role": "system", "content": "You are terse."},
            user("Weather?"),
            {
                "role": "assistant",
                "content": "Let me check.",
                "reasoning": "Need tool.",
                "tool_calls": [tool_call("call_a", _PARIS)],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "15C"},
            {"role": "system", "content": "late system"},
            {"role": "developer", "content": "late dev"},
            tools=[C_WEATHER, chat_tool(NO_PARAMETERS)],
            reasoning_effort="low",
        ),
    },
    {
        "id": "chat.multi_turn_reasoning",
        "note": "analysis before the last final answer is dropped, analysis after it is kept",
        "api": "chat",
        "body": chat(
            user("q1"),
            {"role": "assistant", "content": "a1", "reasoning": "r1"},
            user("q2"),
            {"role": "assistant", "reasoning": "r2", "tool_calls": [tool_call("x", "{}")]},
            {
                "role": "tool",
                "tool_call_id": "x",
                "content": [{"type": "text", "text": "o1"}, {"type": "text", "text": "o2"}],
            },
            {"role": "tool", "tool_call_id": "unknown", "content": "o3"},
            tools=[C_WEATHER],
        ),
    },
    {
        "id": "chat.parallel_tool_calls",
        "api": "chat",
        "body": chat(
            user("Weather in Paris and Bern?"),
            {
                "role": "assistant",
                "reasoning": "Two calls.",
                "tool_calls": [
                    tool_call("call_p", _PARIS),
                    tool_call("call_b", '{"city": "Bern"}'),
                ],
            },
            {"role": "tool", "tool_call_id": "call_p", "content": "15C"},
            {"role": "tool", "tool_call_id": "call_b", "content": "12C"},
            tools=[C_WEATHER],
        ),
    },
    {
        "id": "chat.reasoning_content_field",
        "api": "chat",
        "body": chat(user("q1"), {"role": "assistant", "content": None, "reasoning_content": "rc"}),
    },
    {
        "id": "chat.system_leading",
        "api": "chat",
        "body": chat({"role": "system", "content": "You are terse."}, user("Hi")),
    },
    {
        "id": "chat.developer_leading",
        "api": "chat",
        "body": chat({"role": "developer", "content": "D1"}, user("Hi")),
    },
    {
        "id": "chat.tool_shapes",
        "api": "chat",
        "body": chat(
            user("Hi"),
            tools=[chat_tool(t) for t in (WEATHER, NO_PARAMETERS, EMPTY_OBJECT, RICH)],
        ),
    },
    {
        "id": "chat.tool_without_description",
        "api": "chat",
        "body": chat(user("Hi"), tools=[chat_tool(NO_DESCRIPTION)]),
    },
    *[
        {
            "id": f"chat.reasoning_effort_{effort}",
            "api": "chat",
            "body": chat(user("Hi"), reasoning_effort=effort),
        }
        for effort in ("low", "medium", "high")
    ],
    {
        "id": "chat.unicode",
        "api": "chat",
        "body": chat(
            user(_UNICODE_QUESTION),
            {
                "role": "assistant",
                "reasoning": "Rufe das Tool für Zürich auf.",
                "tool_calls": [tool_call("call_z", _ZURICH)],
            },
            {"role": "tool", "tool_call_id": "call_z", "content": _UNICODE_OUTPUT},
            tools=[C_WEATHER],
        ),
    },
    *[
        {
            "id": f"chat.tool_choice_{name}",
            "api": "chat",
            "body": chat(
                user("Hi"), tools=[C_WEATHER, chat_tool(NO_PARAMETERS)], tool_choice=choice
            ),
        }
        for name, choice in (
            ("none", "none"),
            ("auto", "auto"),
            ("required", "required"),
            ("named", {"type": "function", "function": {"name": "get_weather"}}),
        )
    ],
    {
        "id": "chat.strict_tool",
        "api": "chat",
        "body": chat(user("Hi"), tools=[chat_tool(STRICT)]),
    },
]

# --------------------------------------------------------------------------- response cases

REASONING = "<|channel|>analysis<|message|>Need the tool.<|end|>"
PREAMBLE = "<|start|>assistant<|channel|>commentary<|message|>Let me check.<|end|>"
FINAL = "<|start|>assistant<|channel|>final<|message|>It is 15C.<|return|>"
FINAL_FIRST = "<|channel|>final<|message|>It is 15C.<|return|>"


def _call(
    arguments: str, recipient: str = "functions.get_weather", channel: str = "commentary"
) -> str:
    return (
        f"<|start|>assistant<|channel|>{channel} to={recipient} <|constrain|>json"
        f"<|message|>{arguments}<|call|>"
    )


CALL_ZURICH = _call('{"city":  "Zürich"}')
CALL_BERN = _call('{"city":"Bern"}')
CALL_UNICODE = _call('{"city": "Zürich 🌦 東京"}')
CALL_ANALYSIS = _call('{"city":"Bern"}', channel="analysis")
CALL_BARE = _call('{"city":"Bern"}', recipient="get_weather")
CALL_INVALID = _call("{city: Bern}")
CALL_PARTIAL = (
    "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
    '<|message|>{"city": "Paris'
)

_OUTPUTS: list[dict[str, Any]] = [
    # id suffix, generated, cut_after
    {"name": "reasoning_preamble_final", "generated": REASONING + PREAMBLE + FINAL},
    {
        "name": "reasoning_preamble_final_call",
        "generated": REASONING
        + PREAMBLE
        + "<|start|>assistant<|channel|>final<|message|>Final words.<|end|>"
        + CALL_ZURICH,
    },
    {"name": "reasoning_call", "generated": REASONING + CALL_ZURICH},
    {"name": "two_parallel_calls", "generated": REASONING + CALL_ZURICH + CALL_BERN},
    {"name": "call_on_analysis_channel", "generated": REASONING + CALL_ANALYSIS},
    {"name": "bare_recipient", "generated": REASONING + CALL_BARE},
    {"name": "invalid_json_arguments", "generated": REASONING + CALL_INVALID},
    {"name": "unicode_arguments", "generated": REASONING + CALL_UNICODE},
    {"name": "final_only", "generated": FINAL_FIRST},
    {
        "name": "length_in_reasoning",
        "generated": REASONING + FINAL,
        "cut_after": "<|channel|>analysis<|message|>Need the",
    },
    {
        "name": "length_after_reasoning",
        "generated": REASONING + FINAL,
        "cut_after": REASONING,
    },
    {
        "name": "length_in_message",
        "generated": REASONING + FINAL,
        "cut_after": REASONING + "<|start|>assistant<|channel|>final<|message|>It is",
    },
    {
        "name": "length_in_call_arguments",
        "generated": REASONING + _call('{"city": "Paris", "days": 3}'),
        "cut_after": REASONING + CALL_PARTIAL,
    },
    {
        "name": "length_in_header",
        "generated": REASONING + PREAMBLE,
        "cut_after": REASONING + "<|start|>assistant<|channel|>comment",
    },
    {
        "name": "length_nothing_parsed",
        "generated": FINAL_FIRST,
        "cut_after": "<|channel|>",
    },
    {
        "name": "length_nothing_generated",
        "note": "zero tokens in one engine step; vLLM 0.22.1's streaming context fails on an "
        "empty step (UnboundLocalError) and its stream stops after response.in_progress",
        "generated": FINAL_FIRST,
        "cut_after": "",
    },
]

_WEATHER_QUESTION = "Weather in Zürich?"

RESPONSES: list[dict[str, Any]] = [
    *[
        {
            "id": f"responses.{o['name']}",
            "api": "responses",
            "body": responses(tools=[WEATHER], input=_WEATHER_QUESTION),
            **{k: v for k, v in o.items() if k != "name"},
        }
        for o in _OUTPUTS
    ],
    {
        "id": "responses.max_output_tokens_echo",
        "api": "responses",
        "body": responses(input="Hi", max_output_tokens=50, instructions="Be brief."),
        "generated": FINAL_FIRST,
    },
    {
        "id": "responses.tool_choice_required",
        "api": "responses",
        "body": responses(tools=[WEATHER], tool_choice="required", input=_WEATHER_QUESTION),
        "generated": REASONING + CALL_ZURICH,
    },
    {
        "id": "responses.no_tools_final",
        "api": "responses",
        "body": responses(input="Hi", reasoning={"effort": "low"}),
        "generated": REASONING + FINAL,
    },
    *[
        {
            "id": f"chat.{o['name']}",
            "api": "chat",
            "body": chat(user(_WEATHER_QUESTION), tools=[C_WEATHER]),
            **{k: v for k, v in o.items() if k != "name"},
        }
        for o in _OUTPUTS
    ],
    {
        "id": "chat.two_parallel_calls_parallel_tool_calls_false",
        "api": "chat",
        "body": chat(user(_WEATHER_QUESTION), tools=[C_WEATHER], parallel_tool_calls=False),
        "generated": REASONING + CALL_ZURICH + CALL_BERN,
    },
    {
        "id": "chat.tool_choice_none_model_calls",
        "api": "chat",
        "body": chat(user(_WEATHER_QUESTION), tools=[C_WEATHER], tool_choice="none"),
        "generated": REASONING + PREAMBLE + CALL_ZURICH,
    },
    {
        "id": "chat.tool_choice_required",
        "api": "chat",
        "body": chat(user(_WEATHER_QUESTION), tools=[C_WEATHER], tool_choice="required"),
        "generated": REASONING + CALL_ZURICH,
    },
    {
        "id": "chat.tool_choice_required_model_answers",
        "api": "chat",
        "body": chat(user(_WEATHER_QUESTION), tools=[C_WEATHER], tool_choice="required"),
        "generated": REASONING + FINAL,
    },
    {
        "id": "chat.tool_choice_named",
        "api": "chat",
        "body": chat(
            user(_WEATHER_QUESTION),
            tools=[C_WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        ),
        "generated": REASONING + CALL_ZURICH,
    },
    {
        "id": "chat.include_reasoning_false",
        "api": "chat",
        "body": chat(user(_WEATHER_QUESTION), tools=[C_WEATHER], include_reasoning=False),
        "generated": REASONING + PREAMBLE + FINAL,
    },
    {
        "id": "chat.stream_include_usage",
        "api": "chat",
        "body": chat(user(_WEATHER_QUESTION), tools=[C_WEATHER]),
        "generated": REASONING + PREAMBLE + CALL_ZURICH,
        "stream_extra": {"stream_options": {"include_usage": True}},
    },
    {
        "id": "chat.no_tools_final",
        "api": "chat",
        "body": chat(user("Hi"), reasoning_effort="low"),
        "generated": REASONING + FINAL,
    },
]

# --------------------------------------------------------------------------- error cases

_HI = [user("Hi")]


_HUGE_IN_0_22: dict[str, Any] = {
    "only": ["0.33.0"],
    "why": "vLLM 0.22.1 answers with a 0.9 MB message (each of the ~240 union-member errors "
    "repeats the whole body); responses.input_wrong_type shows that message format",
}


def _post(case_id: str, path: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": case_id, "method": "POST", "path": path, "body": body, **extra}


def _r(case_id: str, **body: Any) -> dict[str, Any]:
    extra = {key: body.pop(key) for key in ("only", "why") if key in body}
    return _post(f"responses.{case_id}", "/v1/responses", {"model": MODEL, **body}, **extra)


def _c(case_id: str, **body: Any) -> dict[str, Any]:
    return _post(f"chat.{case_id}", "/v1/chat/completions", {"model": MODEL, **body})


ERRORS: list[dict[str, Any]] = [
    _r("input_missing"),
    _r("input_wrong_type", input=5),
    _r("unknown_item_type", input=[{"type": "item_reference", "id": "x"}]),
    _r("invalid_item_type", input=[{"type": "bogus"}], **_HUGE_IN_0_22),
    _r(
        "assistant_item_without_type",
        input=[{"role": "assistant", "content": [{"type": "output_text", "text": "x"}]}],
        **_HUGE_IN_0_22,
    ),
    _r("function_call_output_without_call", input=[output("nope", "x")]),
    _r(
        "function_call_output_list",
        input=[
            call("c", "{}", name="f"),
            {
                "type": "function_call_output",
                "call_id": "c",
                "output": [{"type": "input_text", "text": "x"}],
            },
        ],
    ),
    _r(
        "summary_only_reasoning",
        input=[
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}]},
            user("Hi"),
        ],
    ),
    _post("responses.unknown_model", "/v1/responses", {"model": "nope", "input": "Hi"}),
    _post("responses.model_alias", "/v1/responses", {"model": "gpt-oss", "input": "Hi"}),
    _post("responses.model_missing", "/v1/responses", {"input": "Hi"}),
    _r("tool_without_description", input="Hi", tools=[NO_DESCRIPTION]),
    _r("tool_choice_required_without_tools", input="Hi", tool_choice="required"),
    _r(
        "tool_choice_named_not_in_tools",
        input="Hi",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "other"},
    ),
    _r("reasoning_effort_none", input="Hi", reasoning={"effort": "none"}),
    _r("reasoning_effort_minimal", input="Hi", reasoning={"effort": "minimal"}),
    _r(
        "tool_file_search",
        input="Hi",
        tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}],
    ),
    _r("tool_custom", input="Hi", tools=[{"type": "custom", "name": "c"}]),
    _r("include_logprobs", input="Hi", include=["message.output_text.logprobs"]),
    _r("background_without_store", input="Hi", background=True),
    _r("prompt_template", input="Hi", prompt={"id": "pmpt_1"}),
    _r("previous_response_id_unknown", input="Hi", previous_response_id="resp_unknown"),
    {
        "id": "responses.non_json_content_type",
        "method": "POST",
        "path": "/v1/responses",
        "content": "model=openai/gpt-oss-20b&input=Hi",
        "content_type": "text/plain",
    },
    _post(
        "responses.missing_api_key",
        "/v1/responses",
        {"model": MODEL, "input": "Hi"},
        api_key="sk-test",
    ),
    _c("messages_missing"),
    _c("tools_empty", messages=_HI, tools=[]),
    _c("tool_choice_without_tools", messages=_HI, tool_choice="auto"),
    _c("tool_choice_required_without_tools", messages=_HI, tool_choice="required"),
    _c(
        "tool_choice_named_not_in_tools",
        messages=_HI,
        tools=[C_WEATHER],
        tool_choice={"type": "function", "function": {"name": "other"}},
    ),
    _c("tool_without_description", messages=_HI, tools=[chat_tool(NO_DESCRIPTION)]),
    _c("reasoning_effort_none", messages=_HI, reasoning_effort="none"),
    _c("reasoning_effort_minimal", messages=_HI, reasoning_effort="minimal"),
    _c("reasoning_effort_invalid", messages=_HI, reasoning_effort="bogus"),
    _post("chat.unknown_model", "/v1/chat/completions", {"model": "nope", "messages": _HI}),
    _post("chat.model_alias", "/v1/chat/completions", {"model": "gpt-oss", "messages": _HI}),
    {
        "id": "chat.non_json_content_type",
        "method": "POST",
        "path": "/v1/chat/completions",
        "content": "hello",
        "content_type": "text/plain",
    },
    _post(
        "chat.missing_api_key",
        "/v1/chat/completions",
        {"model": MODEL, "messages": _HI},
        api_key="sk-test",
    ),
]

# --------------------------------------------------------------------------- plain endpoints

ENDPOINTS: list[dict[str, Any]] = [
    {"id": "models", "method": "GET", "path": "/v1/models"},
    {"id": "version", "method": "GET", "path": "/version"},
]

CORPUS: dict[str, list[dict[str, Any]]] = {
    "render": RENDER,
    "responses": RESPONSES,
    "errors": ERRORS,
    "endpoints": ENDPOINTS,
}
"""Every kind's cases, by kind (the fixture file names)."""
