// The official Node `openai` package against a served agent (tests/server/test_node_client.py).
//
//   node client.mjs BASE_URL [MODE]       (or AGENT_RUNTIME_URL / AGENT_RUNTIME_MODE)
//
// MODE `all` (default): list the models; a response, the same streamed, a response continuing
// the first by `previous_response_id`; a chat completion, the same streamed; an unknown agent.
// MODE `unauthorized`: one request without a valid API key.
// Prints one JSON summary on stdout; exits 1 (the error on stderr) when a call fails unexpectedly.
import OpenAI from "openai";

const AGENT = "weather-haiku";

const base = process.argv[2] ?? process.env.AGENT_RUNTIME_URL;
const mode = process.argv[3] ?? process.env.AGENT_RUNTIME_MODE ?? "all";
if (!base) {
  console.error("usage: node client.mjs BASE_URL [all|unauthorized]");
  process.exit(2);
}

const client = new OpenAI({
  baseURL: `${base}/v1`,
  apiKey: process.env.OPENAI_API_KEY ?? "unused",
  maxRetries: 0,
  timeout: 30_000,
});

/** What the client raised, as the summary shows it. */
function failure(error) {
  if (!(error instanceof OpenAI.APIError)) throw error;
  return {
    class: error.constructor.name,
    status: error.status,
    code: error.code,
    type: error.type,
    param: error.param,
    message: error.message,
  };
}

async function models() {
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  return ids;
}

async function response(input, extra = {}) {
  const answer = await client.responses.create({ model: AGENT, input, ...extra });
  return {
    id: answer.id,
    status: answer.status,
    output_text: answer.output_text,
    output_types: answer.output.map((item) => item.type),
    previous_response_id: answer.previous_response_id ?? null,
    total_tokens: answer.usage?.total_tokens ?? null,
  };
}

async function streamedResponse(input) {
  const stream = await client.responses.create({ model: AGENT, input, stream: true });
  const types = [];
  const sequence = [];
  let text = "";
  let reasoning = "";
  let final = null;
  for await (const event of stream) {
    types.push(event.type);
    sequence.push(event.sequence_number);
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.reasoning_text.delta") reasoning += event.delta;
    if (event.type === "response.completed") final = event.response;
  }
  return {
    types,
    sequence,
    text,
    reasoning,
    status: final?.status ?? null,
    output_types: final ? final.output.map((item) => item.type) : null,
  };
}

async function chat(content) {
  const answer = await client.chat.completions.create({
    model: AGENT,
    messages: [{ role: "user", content }],
  });
  const choice = answer.choices[0];
  return {
    object: answer.object,
    content: choice.message.content,
    reasoning: choice.message.reasoning ?? null,
    finish_reason: choice.finish_reason,
    total_tokens: answer.usage?.total_tokens ?? null,
  };
}

async function streamedChat(content) {
  const stream = await client.chat.completions.create({
    model: AGENT,
    messages: [{ role: "user", content }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let reasoning = "";
  let chunks = 0;
  const finish = [];
  let usage = null;
  for await (const chunk of stream) {
    chunks += 1;
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? "";
      reasoning += choice.delta.reasoning ?? "";
      if (choice.finish_reason) finish.push(choice.finish_reason);
    }
    if (chunk.usage) usage = chunk.usage;
  }
  return { chunks, content: text, reasoning, finish, total_tokens: usage?.total_tokens ?? null };
}

async function all() {
  const summary = { models: await models() };
  summary.response = await response("Weather in Tokyo?");
  summary.stream = await streamedResponse("Weather in Oslo?");
  summary.continued = await response("And now?", {
    previous_response_id: summary.response.id,
  });
  summary.chat = await chat("Weather in Lima?");
  summary.chat_stream = await streamedChat("Weather in Rome?");
  try {
    await client.responses.create({ model: "no-such-agent", input: "hi" });
    summary.unknown_agent = null;
  } catch (error) {
    summary.unknown_agent = failure(error);
  }
  return summary;
}

async function unauthorized() {
  try {
    return { models: await models() };
  } catch (error) {
    return { error: failure(error) };
  }
}

const modes = { all, unauthorized };
if (!(mode in modes)) {
  console.error(`unknown mode ${JSON.stringify(mode)}: use one of ${Object.keys(modes)}`);
  process.exit(2);
}
try {
  process.stdout.write(`${JSON.stringify(await modes[mode]())}\n`);
} catch (error) {
  console.error(error);
  process.exit(1);
}
