/**
 * Text that shows nothing: a message of spaces or a room named with zero-width characters looks
 * like nothing in a list and cannot be told apart from its neighbours.
 */

/** Characters that show nothing: format characters (zero-width space and joiners, bidi controls) and blank letters. */
const INVISIBLE = '\\p{Cf}\\u115F\\u1160\\u3164\\uFFA0\\u2800';

/** A pattern (JSON Schema, read with the `u` flag) that holds when the text shows at least one character. */
export const SHOWS_SOMETHING = `[^\\s${INVISIBLE}]`;

export const showsSomething = (text: string): boolean => showing.test(text);
const showing = new RegExp(SHOWS_SOMETHING, 'u');

/**
 * Whether the text holds an invisible character, other than a joiner inside an emoji sequence
 * (👩‍💻 is two emoji and a zero-width joiner).
 */
export const holdsInvisible = (text: string): boolean => invisible.test(text.replace(emojiJoiner, ''));
const invisible = new RegExp(`[${INVISIBLE}]`, 'u');
const emojiJoiner = /(?<=\p{Extended_Pictographic}\uFE0F?)\u200D(?=\p{Extended_Pictographic})/gu;
