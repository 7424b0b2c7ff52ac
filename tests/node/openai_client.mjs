// Drives a lobstah router with the official OpenAI Node SDK, as a user's program would.
// Usage: node openai_client.mjs BASE_URL MODEL
// Prints one JSON object with what the SDK saw, and how many routed requests it made.
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused-by-lobstah", maxRetries: 0, timeout: 30000 });
const messages = [{ role: "user", content: "Say hello" }];

const whole = await client.chat.completions.create({ model, messages });
let streamed = "";
for await (const chunk of await client.chat.completions.create({ model, messages, stream: true })) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
}
const retrieved = await client.models.retrieve(model);
const embedded = await client.embeddings.create({ model, input: ["hello world", "hi"] });
const completion = await client.completions.create({ model, prompt: "Say hello" });
const response = await client.responses.create({ model, input: "Say hello" });
let responseStream = "";
for await (const event of await client.responses.create({ model, input: "Say hello", stream: true })) {
  if (event.type === "response.output_text.delta") responseStream += event.delta;
}

console.log(
  JSON.stringify({
    whole: whole.choices[0].message.content,
    stream: streamed,
    retrieved: { id: retrieved.id, peers: retrieved.peers },
    embeddings: embedded.data.map((d) => d.embedding),
    completion: completion.choices[0].text,
    response: response.output_text,
    responseStream,
    requests: 6,
  }),
);
