/**
 * The load side of the ack benchmark, in a process of its own (as Slack is):
 * sends bursts of signed `/flow` slash commands and prints each one's time to
 * the ack (the HTTP answer) as JSON. Args: url secret text concurrency rounds responseUrl.
 */
import { performance } from 'node:perf_hooks';
import { postToSlackEndpoint, slashCommand } from '../test/helpers/fake-slack.ts';

const [url, secret, text, concurrency, rounds, responseUrl] = process.argv.slice(2) as [string, string, string, string, string, string];
const samples: number[] = [];
for (let round = 0; round < Number(rounds); round++) {
  const times = await Promise.all(
    Array.from({ length: Number(concurrency) }, async (_, i) => {
      const body = slashCommand({ text, user: 'UADMIN', userName: 'ada', channel: 'CBENCH', responseUrl: `${responseUrl}-${round}-${i}` });
      const start = performance.now();
      const res = await postToSlackEndpoint(url, body, { secret, contentType: 'application/x-www-form-urlencoded' });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`ack answered ${res.status}`);
      return performance.now() - start;
    }),
  );
  samples.push(...times);
  // Let the work the commands started finish before the next burst, as between bursts in a real channel.
  await new Promise((resolve) => setTimeout(resolve, 1500));
}
console.log(JSON.stringify(samples));
