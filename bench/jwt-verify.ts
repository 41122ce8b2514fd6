/**
 * Verify cost per algorithm, node:crypto against jose, on one core. Chooses the access-token
 * implementation (see accounts/tokens): `npm run bench:jwt`.
 */
import {
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  sign,
  timingSafeEqual,
  verify,
  type KeyObject,
} from 'node:crypto';
import { SignJWT, jwtVerify, importJWK, exportJWK } from 'jose';

const N = 20_000;
const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');
const payload = {
  sub: 'c4a1b6f2-5d7e-4a1b-9c3d-2e8f7a6b5c4d',
  name: 'alice',
  iss: 'statewise',
  aud: 'statewise-api',
  iat: 1,
  exp: 4102444800,
  jti: 'abc',
};

function measure(name: string, fn: () => unknown): number {
  for (let i = 0; i < 1000; i++) fn();
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn();
  const us = Number(process.hrtime.bigint() - t) / 1000 / N;
  console.log(`${name.padEnd(34)} ${us.toFixed(2).padStart(8)} us/op`);
  return us;
}
async function measureAsync(name: string, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 500; i++) await fn();
  const t = process.hrtime.bigint();
  // 100 in flight, as a server under load would have.
  for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, fn));
  const us = Number(process.hrtime.bigint() - t) / 1000 / N;
  console.log(`${name.padEnd(34)} ${us.toFixed(2).padStart(8)} us/op`);
  return us;
}

const secret = Buffer.alloc(32, 7);
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });

function token(alg: string, signer: (data: Buffer) => Buffer): string {
  const data = `${b64(JSON.stringify({ alg, typ: 'JWT', kid: 'k1' }))}.${b64(JSON.stringify(payload))}`;
  return `${data}.${b64(signer(Buffer.from(data)))}`;
}
const cases: Array<[string, string, (d: Buffer, s: Buffer) => boolean, KeyObject | Buffer]> = [
  [
    'HS256',
    token('HS256', (d) => createHmac('sha256', secret).update(d).digest()),
    (d, s) => timingSafeEqual(createHmac('sha256', secret).update(d).digest(), s),
    secret,
  ],
  [
    'RS256',
    token('RS256', (d) => sign('sha256', d, rsa.privateKey)),
    (d, s) => verify('sha256', d, rsa.publicKey, s),
    rsa.publicKey,
  ],
  [
    'EdDSA',
    token('EdDSA', (d) => sign(null, d, ed.privateKey)),
    (d, s) => verify(null, d, ed.publicKey, s),
    ed.publicKey,
  ],
  [
    'ES256',
    token('ES256', (d) => sign('sha256', d, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' })),
    (d, s) => verify('sha256', d, { key: ec.publicKey, dsaEncoding: 'ieee-p1363' }, s),
    ec.publicKey,
  ],
];

console.log(`JWT verify, ${N} ops each (node ${process.version})`);
for (const [alg, jwt, check, key] of cases) {
  const dot = jwt.lastIndexOf('.');
  measure(`node:crypto ${alg} signature+parse`, () => {
    const ok = check(Buffer.from(jwt.slice(0, dot)), Buffer.from(jwt.slice(dot + 1), 'base64url'));
    if (!ok) throw new Error('bad');
    return JSON.parse(Buffer.from(jwt.slice(jwt.indexOf('.') + 1, dot), 'base64url').toString());
  });
  const joseKey = key instanceof Buffer ? key : key;
  await measureAsync(`jose ${alg} jwtVerify`, () =>
    jwtVerify(jwt, joseKey as KeyObject, { issuer: 'statewise', audience: 'statewise-api', algorithms: [alg] }),
  );
}
void SignJWT;
void importJWK;
void exportJWK;
void createPublicKey;
