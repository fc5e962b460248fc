// JSON parsing that refuses duplicate keys. JSON.parse silently keeps the
// last of two equal keys, so two parsers (or a parser and a human) can
// disagree about what a document says — fatal for tokens and STS answers.

/** Raised for invalid JSON or a duplicate key at any depth. */
export class StrictJsonError extends Error {
  readonly code = 'JSON_INVALID';
}

/** Index of the closing quote of the string literal opening at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  throw new StrictJsonError('unterminated string');
}

/** JSON.parse, refusing duplicate keys in any object. */
export function parseJsonStrict(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new StrictJsonError('not valid JSON', { cause });
  }
  // The text is valid JSON now, so a light scan suffices: every string that
  // directly follows `{` or `,` inside an object is a key.
  const stack: Array<{ keys: Set<string>; expectKey: boolean } | null> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      const top = stack.at(-1);
      if (top?.expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) throw new StrictJsonError(`duplicate key ${JSON.stringify(key)}`);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end;
    } else if (c === '{') stack.push({ keys: new Set(), expectKey: true });
    else if (c === '[') stack.push(null);
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') {
      const top = stack.at(-1);
      if (top) top.expectKey = true;
    }
  }
  return value;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
