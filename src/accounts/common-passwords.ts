/** The most common passwords of 10+ characters (from public breach top lists), lower-cased. */
export const COMMON_PASSWORDS: ReadonlySet<string> = new Set([
  '1234567890', '12345678910', '0987654321', '1111111111', '0000000000', '1234554321',
  '123456789a', 'qwertyuiop', 'password12', 'password123', 'password1234', 'passw0rd123',
  'iloveyou12', 'qwerty1234', 'qwerty12345', '1q2w3e4r5t', '1qaz2wsx3edc', 'zaq12wsxcde',
  'asdfghjkl1', 'abcdefghij', 'abc1234567', 'football123', 'baseball123', 'welcome123',
  'sunshine123', 'princess123', 'dragon1234', 'monkey1234', 'letmein123', 'trustno1234',
  'superman123', 'starwars123', 'administrator', 'changeme123', 'computer123', 'michael123',
  'jennifer123', 'whatever123', 'qazwsxedcrfv', 'q1w2e3r4t5y6', 'aaaaaaaaaa', 'passwordpassword',
  'statewise123', 'loveyou1234',
]);
