/**
 * What a room name may be, and when two names are one. A name is for people to read and to pick
 * from a list, so it must show something, and two rooms must not look alike: "General" beside
 * "general", a full-width "Ｇｅｎｅｒａｌ", or "Gеneral" with a Cyrillic е would each pass for the
 * other, and a user would post in the wrong one (the trick of look-alike domain names).
 */
import { AppError } from '../kernel/errors.ts';
import { holdsInvisible, showsSomething } from './visible.ts';

export const ROOM_NAME_MAX = 64;

/** Scripts whose letters look alike (a, а, α; o, о, ο): one name may use only one of them. */
const LOOK_ALIKE_SCRIPTS = ['Latin', 'Cyrillic', 'Greek'] as const;
const scriptLetters = LOOK_ALIKE_SCRIPTS.map((script) => [script, new RegExp(`\\p{Script=${script}}`, 'u')] as const);

export interface RoomName {
  /** As shown: compatibility forms folded (NFKC), spaces trimmed and runs of them made one. */
  name: string;
  /** Two names with the same key are the same name: `name` in lower case. */
  key: string;
}

/** The room name as stored, or an `invalid_input` that says which rule it broke. */
export function roomName(raw: string): RoomName {
  const name = raw.normalize('NFKC').trim().replace(/\s+/gu, ' ');
  if (!showsSomething(name)) throw invalid('A room name needs at least one visible character.');
  if (holdsInvisible(name)) {
    throw invalid('A room name may not hold invisible characters (zero-width spaces or joiners, direction marks).');
  }
  // Counted in characters (code points), as the schema and PostgreSQL's char_length count: an emoji is one.
  if ([...name].length > ROOM_NAME_MAX) throw invalid(`A room name is at most ${ROOM_NAME_MAX} characters.`);
  const scripts = scriptLetters.filter(([, letters]) => letters.test(name)).map(([script]) => script);
  if (scripts.length > 1) {
    throw invalid(`A room name may not mix ${scripts.join(' and ')} letters: they look alike.`);
  }
  return { name, key: name.toLowerCase().normalize('NFKC') };
}

const invalid = (message: string) => new AppError('invalid_input', message);
