// Shared by the benches of this folder.

/** Runs `workers` loops that take tasks `0 … total-1` in order. */
export async function pool(
  workers: number,
  total: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        await task(i);
      }
    }),
  );
}
