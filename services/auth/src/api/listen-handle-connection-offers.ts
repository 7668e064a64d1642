import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import { bidiStreaming } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { checkSequenceStart } from "../domain/connection-queue.js";
import { malformed } from "../domain/errors.js";
import { deleteMessagesBelow, findQueue } from "../store/connection-queues.js";
import { authenticateHandle } from "./authenticate.js";
import { Label } from "./labels.js";
import { serveListener } from "./listen.js";

/** ListenHandleConnectionOffers: live listening on a handle's connection queue. */
export function listenHandleConnectionOffers(ctx: AuthContext) {
  return bidiStreaming<auth.ListenHandleConnectionOffersRequest, auth.ListenHandleConnectionOffersResponse>(
    async (requests, call, stream) => {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done) return;
      const init = first.value.request;
      if (init?.$case !== "init") throw malformed("request", "the first message must be init");
      const now = ctx.now();
      const { queueId, start } = await transaction(ctx.db, async (tx) => {
        const { tbs, handle } = await authenticateHandle(
          ctx,
          tx,
          init.value,
          auth.ListenHandleConnectionOffersTbs,
          Label.listenHandleConnectionOffers,
          now,
        );
        const queue = await findQueue(tx, { handleHash: handle.handleHash }, true);
        if (!queue) throw new NotFoundError("no such connection queue");
        checkSequenceStart(tbs.sequenceNumberStart, queue.nextSequence, "tbs.sequence_number_start");
        await deleteMessagesBelow(tx, queue.queueId, tbs.sequenceNumberStart);
        return { queueId: queue.queueId, start: tbs.sequenceNumberStart };
      });
      await serveListener(ctx, queueId, start, iterator, call.signal, (event) => stream.send({ event }));
    },
  );
}
