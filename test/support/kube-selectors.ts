// Label and field selectors as the Kubernetes API server parses and matches them (the query-string syntax of labelSelector and fieldSelector).

import type { FieldGetter } from './kube-api-resources.ts';

/** A selector the server cannot parse or does not support; the server answers it with 400 BadRequest. */
export class SelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

export type LabelOperator = '=' | '==' | '!=' | 'in' | 'notin' | 'exists' | '!' | '>' | '<';

export interface LabelRequirement {
  readonly key: string;
  readonly operator: LabelOperator;
  readonly values: readonly string[];
}

export type Labels = Readonly<Record<string, string>> | undefined;

// A label key: an optional DNS-subdomain prefix and a name of at most 63 characters; a value: the same name or "".
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function checkKey(key: string): void {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : '';
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const prefixOk = slash < 0 || (prefix.length <= 253 && PREFIX.test(prefix));
  if (!prefixOk || name.length > 63 || !NAME.test(name)) {
    throw new SelectorError(`unable to parse requirement: key: Invalid value: "${key}": not a valid label key`);
  }
}

function checkValue(key: string, value: string): void {
  if (value !== '' && (value.length > 63 || !NAME.test(value))) {
    throw new SelectorError(`unable to parse requirement: values[0][${key}]: Invalid value: "${value}": not a valid label value`);
  }
}

type Token = { kind: 'word'; text: string } | { kind: 'op'; text: '!' | '=' | '==' | '!=' | '(' | ')' | ',' | '<' | '>' };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  while (index < text.length) {
    const char = text[index]!;
    if (/\s/.test(char)) {
      index++;
    } else if ((char === '=' || char === '!') && text[index + 1] === '=') {
      tokens.push({ kind: 'op', text: char === '=' ? '==' : '!=' });
      index += 2;
    } else if ('!=(),<>'.includes(char)) {
      tokens.push({ kind: 'op', text: char as '!' | '=' | '(' | ')' | ',' | '<' | '>' });
      index++;
    } else {
      let end = index;
      while (end < text.length && !/[\s!=(),<>]/.test(text[end]!)) end++;
      tokens.push({ kind: 'word', text: text.slice(index, end) });
      index = end;
    }
  }
  return tokens;
}

/** Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h,n>3` into requirements, all of which must hold (comma is AND). */
export function parseLabelSelector(text: string): LabelRequirement[] {
  const tokens = tokenize(text);
  const requirements: LabelRequirement[] = [];
  let position = 0;
  const peek = (): Token | undefined => tokens[position];
  const expectWord = (what: string): string => {
    const token = tokens[position++];
    if (token?.kind !== 'word') throw new SelectorError(`unable to parse requirement: found '${token?.text ?? ''}', expected: ${what}`);
    return token.text;
  };
  while (position < tokens.length) {
    if (peek()?.text === '!') {
      position++;
      const key = expectWord('identifier after \'!\'');
      checkKey(key);
      requirements.push({ key, operator: '!', values: [] });
    } else {
      const key = expectWord('identifier');
      checkKey(key);
      const next = peek();
      if (next === undefined || next.text === ',') {
        requirements.push({ key, operator: 'exists', values: [] });
      } else if (next.text === '=' || next.text === '==' || next.text === '!=') {
        position++;
        const after = peek();
        // `a=` selects the empty value.
        const value = after === undefined || after.text === ',' ? '' : expectWord('value');
        checkValue(key, value);
        requirements.push({ key, operator: next.text, values: [value] });
      } else if (next.text === '<' || next.text === '>') {
        position++;
        const value = expectWord('integer value');
        if (!/^-?\d+$/.test(value)) throw new SelectorError(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer`);
        requirements.push({ key, operator: next.text, values: [value] });
      } else if (next.kind === 'word' && (next.text === 'in' || next.text === 'notin')) {
        position++;
        if (tokens[position++]?.text !== '(') throw new SelectorError(`unable to parse requirement: found '${tokens[position - 1]?.text ?? ''}', expected: '('`);
        const values: string[] = [];
        for (;;) {
          const token = tokens[position];
          if (token?.text === ')' || token?.text === ',') values.push('');
          else values.push(expectWord('value'));
          const separator = tokens[position++];
          if (separator?.text === ')') break;
          if (separator?.text !== ',') throw new SelectorError(`unable to parse requirement: found '${separator?.text ?? ''}', expected: ',' or ')'`);
        }
        if (values.length === 1 && values[0] === '') {
          throw new SelectorError(`unable to parse requirement: for 'in', 'notin' operators, values set can't be empty`);
        }
        for (const value of values) checkValue(key, value);
        requirements.push({ key, operator: next.text, values });
      } else {
        throw new SelectorError(`unable to parse requirement: found '${next.text}', expected: in, notin, =, ==, !=, gt, lt`);
      }
    }
    const separator = tokens[position++];
    if (separator !== undefined && separator.text !== ',') throw new SelectorError(`found '${separator.text}', expected: ',' or 'end of string'`);
    if (separator !== undefined && position === tokens.length) throw new SelectorError(`found '', expected: identifier`);
  }
  return requirements;
}

export function matchesLabels(requirements: readonly LabelRequirement[], labels: Labels): boolean {
  for (const { key, operator, values } of requirements) {
    const present = labels !== undefined && Object.hasOwn(labels, key);
    const value = present ? labels[key]! : '';
    switch (operator) {
      case '=':
      case '==':
      case 'in':
        if (!present || !values.includes(value)) return false;
        break;
      case '!=':
      case 'notin':
        if (present && values.includes(value)) return false;
        break;
      case 'exists':
        if (!present) return false;
        break;
      case '!':
        if (present) return false;
        break;
      case '>':
      case '<': {
        if (!present || !/^-?\d+$/.test(value)) return false;
        const actual = Number(value);
        const bound = Number(values[0]);
        if (operator === '>' ? !(actual > bound) : !(actual < bound)) return false;
        break;
      }
    }
  }
  return true;
}

export interface FieldRequirement {
  readonly field: string;
  readonly operator: '=' | '==' | '!=';
  readonly value: string;
  readonly read: FieldGetter;
}

/** Splits on commas that a backslash does not escape. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let current = '';
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (char === '\\' && index + 1 < text.length) {
      current += char + text[index + 1];
      index++;
    } else if (char === ',') {
      terms.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  terms.push(current);
  return terms;
}

function unescapeValue(value: string): string {
  return value.replace(/\\(.)/g, (whole, char: string) => {
    if (char === '\\' || char === ',' || char === '=') return char;
    throw new SelectorError(`invalid field selector value: invalid escape sequence ${whole}`);
  });
}

/** Parses `metadata.name=x,spec.nodeName!=y` against the labels `supported` for the resource. */
export function parseFieldSelector(text: string, supported: ReadonlyMap<string, FieldGetter>): FieldRequirement[] {
  if (text.trim() === '') return [];
  const requirements: FieldRequirement[] = [];
  for (const term of splitTerms(text)) {
    const match = /^([^=!]+?)\s*(!=|==|=)(.*)$/.exec(term.trim());
    if (match === null) throw new SelectorError(`invalid selector: '${text}'; can't understand '${term}'`);
    const field = match[1]!.trim();
    const read = supported.get(field);
    if (read === undefined) throw new SelectorError(`field label not supported: ${field}`);
    requirements.push({ field, operator: match[2] as '=' | '==' | '!=', value: unescapeValue(match[3]!), read });
  }
  return requirements;
}

export function matchesFields(requirements: readonly FieldRequirement[], object: Readonly<Record<string, unknown>>): boolean {
  for (const { operator, value, read } of requirements) {
    const equal = read(object) === value;
    if (operator === '!=' ? equal : !equal) return false;
  }
  return true;
}
