// Drives kelp's HTML pages in headless Chromium (Debian's, through playwright-core):
// the master's status page must show every volume server, and the filer browser must
// create a folder, upload two files, list them, download one, rename and delete one.
// Screenshots of each page go to OUT_DIR. Run by tests/web_ui.rs:
//   node ui.mjs MASTER FILER OUT_DIR VOLUME[,VOLUME...] DOWNLOAD_TO
import { chromium } from 'playwright-core';
import { Buffer } from 'node:buffer';

const [master, filer, outDir, volumes, downloadTo] = process.argv.slice(2);
const fail = (m) => { throw new Error(m); };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
try {
  const page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1200, height: 800 } });

  await page.goto(`http://${filer}/`);
  await page.fill('input[name=name]', 'photos');
  await page.click('button:text("Create folder")');
  await page.click('a:text-is("photos/")');
  if (!page.url().endsWith('/photos/')) fail(`not in the new folder: ${page.url()}`);
  const bin = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 251));
  await page.setInputFiles('input[type=file]', [
    { name: 'a.txt', mimeType: 'text/plain', buffer: Buffer.from('first file') },
    { name: 'b.bin', mimeType: 'application/octet-stream', buffer: bin },
  ]);
  await page.click('button:text("Upload")');
  const listed = await page.textContent('table');
  if (!listed.includes('a.txt') || !listed.includes('b.bin')) fail(`uploads not listed: ${listed}`);
  await page.screenshot({ path: `${outDir}/filer.png`, fullPage: true });

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('a[download][href$="/b.bin"]'),
  ]);
  await download.saveAs(downloadTo);

  await page.fill('input[aria-label="new name of a.txt"]', 'c.txt');
  await page.click('form[action$="/a.txt?ui=rename"] button');
  let after = await page.textContent('table');
  if (after.includes('a.txt') || !after.includes('c.txt')) fail(`rename not shown: ${after}`);
  await page.click('button[aria-label="delete c.txt"]');
  after = await page.textContent('table');
  if (after.includes('c.txt') || !after.includes('b.bin')) fail(`delete not shown: ${after}`);
  await page.goto(`http://${master}/`);
  const masterText = await page.textContent('body');
  for (const v of volumes.split(',')) {
    if (!masterText.includes(v)) fail(`the master page does not show volume server ${v}`);
  }
  if (!masterText.includes('leader')) fail('the master page names no leader');
  await page.screenshot({ path: `${outDir}/master.png`, fullPage: true });

  await page.goto(`http://${volumes.split(',')[0]}/ui`);
  if (!(await page.textContent('h1')).includes('volume server')) fail('no volume server page');
  await page.screenshot({ path: `${outDir}/volume.png`, fullPage: true });

  console.log('ok');
} finally {
  await browser.close();
}
