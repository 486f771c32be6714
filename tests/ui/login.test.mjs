// Browser test of the login page: headless Debian chromium (driven by playwright-core) against a
// running Portcullis. Run by crates/portcullis/tests/ui.rs (through scripts/test), which starts the
// server and sets:
//   PORTCULLIS_URL                  http://127.0.0.1:PORT
//   PORTCULLIS_ADMIN_USERNAME       the bootstrapped superuser
//   PORTCULLIS_ADMIN_PASSWORD       its password
//   PORTCULLIS_ARTIFACTS_DIR        screenshots go to $PORTCULLIS_ARTIFACTS_DIR/ui/ (default: <repo>/artifacts)
//   PORTCULLIS_TEST_CHROMIUM        optional, the browser (default /usr/bin/chromium, Debian's package)
// By hand: `PORTCULLIS_URL=... PORTCULLIS_ADMIN_USERNAME=admin PORTCULLIS_ADMIN_PASSWORD=... node --test login.test.mjs`.
//
// The HTML contract checked here (server-rendered pages, no JavaScript needed):
//   - GET / sends a visitor who is not logged in to /if/flow/default-authentication-flow/ (?next= allowed);
//   - every flow step has exactly one <form method="post"> with a hidden input csrf_token and a
//     button[type=submit];
//   - identification: <input name="uid_field"> labelled "Username or email" (label[for]), a non-empty <h1>;
//   - password: <input type="password" name="password">; a wrong password shows the step again with
//     [role=alert] "Invalid password" and an empty password input;
//   - a correct password ends on /if/user/, which names the user and has a#logout "Log out";
//     the session cookie authentik_session is HttpOnly and SameSite=Lax;
//   - a#logout ends the session and shows the identification step; /if/user/ then leads to the login page;
//   - identification and password pages: <html lang>, <meta name="viewport">, every visible input labelled
//     (label[for] or aria-label).
// Steps depend on each other: after the first failure the remaining steps of the flow are skipped, so the
// first failure is the one to read. Every wait is bounded (STEP_TIMEOUT_MS).

import { test, before, after } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const STEP_TIMEOUT_MS = 10_000;
const LOGIN_PATH = '/if/flow/default-authentication-flow/';
const USER_PATH = '/if/user/';
const MOBILE = { width: 390, height: 844 };

function requireEnv(name) {
    const v = process.env[name];
    if (!v) {
        throw new Error(`${name} is not set: run this through scripts/test (crates/portcullis/tests/ui.rs starts the server and sets it)`);
    }
    return v;
}

const BASE = requireEnv('PORTCULLIS_URL').replace(/\/+$/, '');
const USERNAME = requireEnv('PORTCULLIS_ADMIN_USERNAME');
const PASSWORD = requireEnv('PORTCULLIS_ADMIN_PASSWORD');
const WRONG_PASSWORD = 'definitely-not-the-password-7f3a';
const CHROMIUM = process.env.PORTCULLIS_TEST_CHROMIUM || '/usr/bin/chromium';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.join(process.env.PORTCULLIS_ARTIFACTS_DIR || path.join(HERE, '..', '..', 'artifacts'), 'ui');

let browser;

before(async () => {
    if (!fs.existsSync(CHROMIUM)) {
        throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (scripts/test does) or set PORTCULLIS_TEST_CHROMIUM`);
    }
    // Fresh each run, so no FAILED-*.png of an earlier run lingers next to this run's screenshots.
    fs.rmSync(SHOTS, { recursive: true, force: true });
    fs.mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        timeout: 30_000,
        // Tests run as root in CI, where chromium's sandbox cannot start: --no-sandbox.
        // /dev/shm is small in many containers: --disable-dev-shm-usage.
        chromiumSandbox: false,
        args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
});

after(async () => {
    await browser?.close();
});

// ------------------------------------------------------------------------------------------ helpers

async function newPage(options = {}) {
    const context = await browser.newContext({ baseURL: BASE, ...options });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    const page = await context.newPage();
    page.diagnostics = [];
    page.on('pageerror', (e) => page.diagnostics.push(`page error: ${e.message}`));
    page.on('console', (m) => {
        if (m.type() === 'error') page.diagnostics.push(`console error: ${m.text()}`);
    });
    page.on('requestfailed', (r) => page.diagnostics.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
    return { context, page };
}

async function shot(page, name) {
    const file = path.join(SHOTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: STEP_TIMEOUT_MS });
    return file;
}

/** What the browser is showing, for failure messages. */
async function describePage(page) {
    let text = '';
    try {
        text = (await page.locator('body').innerText({ timeout: 2_000 })).replace(/\s+/g, ' ').trim();
    } catch {
        try {
            text = (await page.content()).replace(/\s+/g, ' ');
        } catch {
            text = '(page content unavailable)';
        }
    }
    if (text.length > 600) text = `${text.slice(0, 600)}…`;
    const diag = page.diagnostics?.length ? `\n  browser: ${page.diagnostics.slice(-5).join('\n  browser: ')}` : '';
    return `on ${page.url()}\n  page text: ${text || '(empty)'}${diag}`;
}

/** A broken expectation: the message says what and where, so no stack frames (unexpected errors keep theirs). */
class UiFailure extends Error {
    constructor(message) {
        super(message);
        this.name = 'UiFailure';
        this.stack = `${this.name}: ${message}`;
    }
}

async function fail(page, message) {
    throw new UiFailure(`${message}\n  ${await describePage(page)}`);
}

async function check(page, cond, message) {
    if (!cond) await fail(page, message);
}

/** Waits (bounded) until `selector` is visible; fails with "expected <selector> (<what>)". */
async function expectVisible(page, selector, what) {
    const loc = page.locator(selector).first();
    try {
        await loc.waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
    } catch {
        const n = await page.locator(selector).count().catch(() => 0);
        await fail(page, `expected ${selector} (${what}) to be visible; found ${n} matching element(s), none visible`);
    }
    return loc;
}

function pathOf(page) {
    return new URL(page.url()).pathname;
}

/** Callers have waited for the page to load; redirects are server-side, so a short grace is enough. */
async function expectPath(page, wanted, why) {
    try {
        await page.waitForURL((u) => u.pathname === wanted, { timeout: 3_000, waitUntil: 'commit' });
    } catch {
        await fail(page, `expected the browser on ${wanted} (${why}), but it is on ${pathOf(page)}`);
    }
}

/** Exactly one <form method="post">, carrying a non-empty hidden csrf_token and a button[type=submit]. */
async function expectFlowForm(page, step) {
    const forms = page.locator('form[method="post" i]');
    const n = await forms.count();
    await check(page, n === 1, `${step}: expected exactly one form[method=post], found ${n}`);
    const csrf = forms.locator('input[type="hidden"][name="csrf_token"]');
    await check(page, (await csrf.count()) === 1, `${step}: expected input[type=hidden][name=csrf_token] inside the form`);
    const token = (await csrf.getAttribute('value')) ?? '';
    await check(page, token.trim().length > 0, `${step}: the hidden csrf_token is empty`);
    await check(page, (await forms.locator('button[type="submit"]').count()) >= 1, `${step}: expected button[type=submit] inside the form`);
    return forms.first();
}

/** Submits the flow form and waits for the next document to load. */
async function submit(page) {
    const button = page.locator('form[method="post" i] button[type="submit"]').first();
    await Promise.all([
        page.waitForNavigation({ waitUntil: 'load', timeout: STEP_TIMEOUT_MS }),
        button.click({ timeout: STEP_TIMEOUT_MS }),
    ]);
}

/** <html lang>, <meta name=viewport>, and a label for every visible input (label[for=id] or aria-label). */
async function expectAccessibleBasics(page, step) {
    const lang = (await page.locator('html').getAttribute('lang')) ?? '';
    await check(page, lang.trim().length > 0, `${step}: expected <html lang="..."> (the document language)`);
    await check(page, (await page.locator('meta[name="viewport"]').count()) > 0, `${step}: expected <meta name="viewport">`);
    const unlabelled = await page.evaluate(() => {
        const out = [];
        for (const el of document.querySelectorAll('input, select, textarea')) {
            if (el.type === 'hidden') continue;
            const r = el.getBoundingClientRect();
            const st = getComputedStyle(el);
            if (r.width === 0 || r.height === 0 || st.visibility === 'hidden' || st.display === 'none') continue;
            if ((el.getAttribute('aria-label') || '').trim()) continue;
            const label = el.id ? [...document.querySelectorAll('label[for]')].find((l) => l.htmlFor === el.id) : null;
            if (label && label.textContent.trim()) continue;
            out.push(el.outerHTML);
        }
        return out;
    });
    await check(page, unlabelled.length === 0, `${step}: visible input(s) without a label (label[for=id] or aria-label): ${unlabelled.join(' ')}`);
}

/** The identification step: path, non-empty h1, the labelled uid_field, the form. */
async function expectIdentificationStep(page, step) {
    await expectPath(page, LOGIN_PATH, 'the identification step of the default authentication flow');
    const uid = await expectVisible(page, 'input[name="uid_field"]', 'the identification step\'s "Username or email" field');
    const h1 = page.locator('h1');
    await check(page, (await h1.count()) > 0, `${step}: expected an <h1> (the flow title)`);
    const title = (await h1.first().innerText()).trim();
    await check(page, title.length > 0, `${step}: the <h1> (the flow title) is empty`);
    const id = await uid.getAttribute('id');
    await check(page, !!id, `${step}: input[name=uid_field] has no id, so no label[for] can point at it`);
    const label = page.locator(`label[for="${id}"]`);
    await check(page, (await label.count()) > 0, `${step}: expected label[for="${id}"] for input[name=uid_field]`);
    const labelText = (await label.first().innerText()).replace(/\s+/g, ' ').trim();
    await check(page, /username or email/i.test(labelText), `${step}: the label of uid_field says "${labelText}", expected "Username or email"`);
    await expectFlowForm(page, step);
    return uid;
}

async function sessionCookie(context) {
    return (await context.cookies(BASE)).find((c) => c.name === 'authentik_session');
}

// ------------------------------------------------------------------------------------------ the login flow

// One browser session walks the whole flow; each step is a subtest so the summary shows how far it got.
test('login flow: identification, wrong password, password, user page, logout', async (t) => {
    const { context, page } = await newPage();
    let failed = null;
    // `id` names the screenshots: <id>.png on success, FAILED-<id>.png on failure.
    const step = (id, title, fn) =>
        t.test(`${id}: ${title}`, { timeout: 3 * STEP_TIMEOUT_MS }, async (st) => {
            if (failed) {
                st.skip(`an earlier step (${failed}) failed`);
                return;
            }
            try {
                await fn();
            } catch (e) {
                failed = id;
                await shot(page, `FAILED-${id}`).catch(() => {});
                throw e;
            }
        });

    try {
        await step('01-login', '/ leads a visitor to the identification step', async () => {
            let resp;
            try {
                resp = await page.goto('/', { waitUntil: 'load' });
            } catch (e) {
                throw new Error(`GET ${BASE}/ failed: ${e.message}`);
            }
            await check(page, resp && resp.ok(), `GET / ended with HTTP ${resp?.status()} (expected a redirect to ${LOGIN_PATH} and 200)`);
            await expectIdentificationStep(page, '01-login');
            await expectAccessibleBasics(page, '01-login');
            await shot(page, '01-login');
        });

        await step('02-password', 'the username leads to the password step', async () => {
            await page.locator('input[name="uid_field"]').fill(USERNAME);
            await submit(page);
            await expectVisible(page, 'input[type="password"][name="password"]', 'the password step\'s password field');
            await expectFlowForm(page, '02-password');
            await expectAccessibleBasics(page, '02-password');
            await shot(page, '02-password');
        });

        await step('03-wrong-password', 'a wrong password shows the step again with an alert', async () => {
            await page.locator('input[type="password"][name="password"]').fill(WRONG_PASSWORD);
            await submit(page);
            const alert = await expectVisible(page, '[role="alert"]', 'the error after a wrong password');
            const text = (await alert.innerText()).trim();
            await check(page, text.includes('Invalid password'), `03-wrong-password: [role=alert] says "${text}", expected it to contain "Invalid password"`);
            const pw = await expectVisible(page, 'input[type="password"][name="password"]', 'the password field, shown again');
            await check(page, (await pw.inputValue()) === '', '03-wrong-password: the password input is not empty after a wrong password');
            await check(page, !(await page.content()).includes(WRONG_PASSWORD), '03-wrong-password: the page source contains the submitted password');
            await expectFlowForm(page, '03-wrong-password');
            await shot(page, '03-wrong-password');
        });

        await step('04-logged-in', 'the right password ends on /if/user/ with a session cookie', async () => {
            await page.locator('input[type="password"][name="password"]').fill(PASSWORD);
            await submit(page);
            await expectPath(page, USER_PATH, 'the user interface after a successful login');
            await page.waitForLoadState('load');
            const body = await page.locator('body').innerText();
            await check(page, body.includes(USERNAME), `04-logged-in: ${USER_PATH} does not show the username "${USERNAME}"`);
            const logout = await expectVisible(page, 'a#logout', 'the "Log out" link');
            const logoutText = (await logout.innerText()).trim();
            await check(page, /log out/i.test(logoutText), `04-logged-in: a#logout says "${logoutText}", expected "Log out"`);
            const cookie = await sessionCookie(context);
            const names = (await context.cookies(BASE)).map((c) => c.name).join(', ') || '(none)';
            await check(page, !!cookie, `04-logged-in: expected a cookie named authentik_session; cookies: ${names}`);
            await check(page, cookie.httpOnly === true, '04-logged-in: the authentik_session cookie is not HttpOnly');
            await check(page, cookie.sameSite === 'Lax', `04-logged-in: the authentik_session cookie has SameSite=${cookie.sameSite}, expected Lax`);
            await shot(page, '04-logged-in');
        });

        await step('05-logged-out', 'a#logout ends the session', async () => {
            await Promise.all([
                page.waitForNavigation({ waitUntil: 'load', timeout: STEP_TIMEOUT_MS }),
                page.locator('a#logout').click(),
            ]);
            await expectVisible(page, 'input[name="uid_field"]', 'the identification step after logging out');
            await shot(page, '05-logged-out');
            // The session is really gone: the user interface sends us back to the login page.
            await page.goto(USER_PATH, { waitUntil: 'load' });
            await expectPath(page, LOGIN_PATH, `${USER_PATH} after logging out must lead to the login page`);
            await expectVisible(page, 'input[name="uid_field"]', `the identification step, reached from ${USER_PATH} after logging out`);
        });
    } finally {
        await context.close();
    }
});

// ------------------------------------------------------------------------------------------ other passes

test('mobile viewport (390x844): the identification step fits the screen', { timeout: 3 * STEP_TIMEOUT_MS }, async () => {
    const { context, page } = await newPage({ viewport: MOBILE, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    try {
        await page.goto('/', { waitUntil: 'load' });
        await expectIdentificationStep(page, 'mobile-01-login');
        await expectAccessibleBasics(page, 'mobile-01-login');
        // Against the device width, not innerWidth: a mobile browser zooms out to fit wide content,
        // which widens innerWidth too.
        const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
        await shot(page, 'mobile-01-login');
        await check(page, scrollWidth <= MOBILE.width, `mobile-01-login: the page is ${scrollWidth}px wide on a ${MOBILE.width}px screen (horizontal scrolling)`);
    } finally {
        await context.close();
    }
});

test('without JavaScript: the login flow still reaches /if/user/', { timeout: 6 * STEP_TIMEOUT_MS }, async () => {
    const { context, page } = await newPage({ javaScriptEnabled: false });
    try {
        await page.goto('/', { waitUntil: 'load' });
        await expectVisible(page, 'input[name="uid_field"]', 'the identification step (JavaScript disabled)');
        await page.locator('input[name="uid_field"]').fill(USERNAME);
        await submit(page);
        await expectVisible(page, 'input[type="password"][name="password"]', 'the password step (JavaScript disabled)');
        await page.locator('input[type="password"][name="password"]').fill(PASSWORD);
        await submit(page);
        await expectPath(page, USER_PATH, 'the user interface after logging in with JavaScript disabled');
        await expectVisible(page, 'a#logout', 'the "Log out" link (JavaScript disabled)');
    } finally {
        await context.close();
    }
});
