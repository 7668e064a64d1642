import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import { bidiStreaming } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { checkSequenceStart } from "../domain/connection-queue.js";
import { malformed } from "../domain/errors.js";
import { deleteMessagesBelow, findQueue } from "../store/connection-queues.js";
import { authenticateClient } from "./authenticate.js";
import { Label } from "./labels.js";
import { serveListener } from "./listen.js";

/** ListenConnectionOffers: live listening on the signing client's connection queue. */
export function listenConnectionOffers(ctx: AuthContext) {
  return bidiStreaming<auth.ListenConnectionOffersRequest, auth.ListenConnectionOffersResponse>(
    async (requests, call, stream) => {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done) return;
      const init = first.value.request;
      if (init?.$case !== "init") throw malformed("request", "the first message must be init");
      const now = ctx.now();
      const { queueId, start } = await transaction(ctx.db, async (tx) => {
        const { tbs, clientKey } = await authenticateClient(
          ctx,
          tx,
          init.value,
          auth.ListenConnectionOffersTbs,
          Label.listenConnectionOffers,
          now,
        );
        const queue = await findQueue(tx, { client: clientKey }, true);
        if (!queue) throw new NotFoundError("no such connection queue");
        checkSequenceStart(tbs.sequenceNumberStart, queue.nextSequence, "tbs.sequence_number_start");
        await deleteMessagesBelow(tx, queue.queueId, tbs.sequenceNumberStart);
        return { queueId: queue.queueId, start: tbs.sequenceNumberStart };
      });
      await serveListener(ctx, queueId, start, iterator, call.signal, (event) => stream.send({ event }));
    },
  );
}
