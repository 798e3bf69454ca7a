"""RocketMQ 4.9's own setting names that mq knows but does not use, so a ``broker.conf`` or
``namesrv.properties`` from a RocketMQ install starts here unchanged or is refused for a clear reason.

The names are those of RocketMQ's BrokerConfig, MessageStoreConfig, NettyServerConfig, NettyClientConfig and
NamesrvConfig. Tuning of Java's own machinery (thread pools and their queues, Netty buffers and semaphores,
page-cache timing) has no counterpart in a Twisted process: such a key is accepted with a warning. A key that
turns on a feature mq does not have is refused, naming the feature, rather than running without it.
"""

from __future__ import annotations

from typing import Dict, FrozenSet

#: Broker keys accepted and ignored with a warning.
BROKER_IGNORED: FrozenSet[str] = frozenset("""
    adminBrokerThreadPoolNums autoDeleteUnusedStats bitMapLengthConsumeQueueExt brokerFastFailureEnable
    channelNotActiveInterval cleanFileForciblyEnable clientAsyncSemaphoreValue clientCallbackExecutorThreads
    clientChannelMaxIdleTimeSeconds clientCloseSocketIfTimeout clientManageThreadPoolNums
    clientManagerThreadPoolQueueCapacity clientOnewaySemaphoreValue clientPooledByteBufAllocatorEnable
    clientSocketRcvBufSize clientSocketSndBufSize clientWorkerThreads commercialBaseCount commercialBigCount
    commercialEnable commercialTimerCount commercialTransCount commitCommitLogLeastPages
    commitCommitLogThoroughInterval commitIntervalCommitLog compressedRegister configBlackList
    connectTimeoutMillis consumerFallbehindThreshold consumerManageThreadPoolNums
    consumerManagerThreadPoolQueueCapacity debugLockEnable deleteCommitLogFilesInterval
    deleteConsumeQueueFilesInterval destroyMapedFileIntervalForcibly disableConsumeIfConsumerReadSlowly
    diskFallRecorded enableDetailStat enableScheduleAsyncDeliver enableScheduleMessageStats
    endTransactionPoolQueueCapacity endTransactionThreadPoolNums expectConsumerNumUseFilter
    fastFailIfNoBufferInStorePool filterDataCleanTimeSpan filterSupportRetry flushCommitLogLeastPages
    flushCommitLogThoroughInterval flushCommitLogTimed
    flushConsumerOffsetHistoryInterval flushDelayOffsetInterval
    flushLeastPagesWhenWarmMapedFile forceRegister haSlaveFallbehindMax heartbeatThreadPoolNums
    heartbeatThreadPoolQueueCapacity highSpeedMode isEnableBatchPush isolateLogEnable
    mappedFileSizeConsumeQueueExt maxDelayTime maxErrorRateOfBloomFilter messageIndexSafe
    osPageCacheBusyTimeOutMills processReplyMessageThreadPoolNums pullMessageThreadPoolNums
    pullThreadPoolQueueCapacity putMessageFutureThreadPoolNums putMsgIndexHightWater
    putThreadPoolQueueCapacity queryMessageThreadPoolNums queryThreadPoolQueueCapacity
    redeleteHangedFileInterval replyThreadPoolQueueCapacity scheduleAsyncDeliverMaxPendingLimit
    scheduleAsyncDeliverMaxResendNum2Blocked sendMessageThreadPoolNums sendThreadPoolQueueCapacity
    serverAsyncSemaphoreValue serverCallbackExecutorThreads serverOnewaySemaphoreValue
    serverPooledByteBufAllocatorEnable serverSelectorThreads serverSocketBacklog serverSocketRcvBufSize
    serverSocketSndBufSize serverWorkerThreads slaveTimeout startAcceptSendRequestTimeStamp transferMsgByHeap
    transientStorePoolSize useEpollNativeSelector useReentrantLockWhenPutMessage waitTimeMillsInHeartbeatQueue
    waitTimeMillsInPullQueue waitTimeMillsInSendQueue waitTimeMillsInTransactionQueue warmMapedFileEnable
    writeBufferHighWaterMark writeBufferLowWaterMark
""".split())

#: NameServer keys accepted and ignored with a warning.
NAMESRV_IGNORED: FrozenSet[str] = frozenset("""
    clusterTest configBlackList configStorePath productEnvName serverAsyncSemaphoreValue
    serverCallbackExecutorThreads serverOnewaySemaphoreValue serverPooledByteBufAllocatorEnable
    serverSelectorThreads serverSocketBacklog serverSocketRcvBufSize serverSocketSndBufSize
    serverWorkerThreads useEpollNativeSelector writeBufferHighWaterMark writeBufferLowWaterMark
""".split())

#: Keys of features mq does not have: the start is refused, naming the feature.
NOT_IMPLEMENTED: Dict[str, str] = {
    "duplicationEnable": "store duplication",
    "enableCalcFilterBitMap": "the extended consume queue",
    "enableConsumeQueueExt": "the extended consume queue",
    "enableLmq": "light message queues (LMQ)",
    "enableMultiDispatch": "light message queues (LMQ)",
    "fetchNamesrvAddrByAddressServer": "NameServer addresses from an address server",
    "filterServerNums": "filter servers",
    "maxLmqConsumeQueueNum": "light message queues (LMQ)",
    "messageStorePlugIn": "message store plug-ins",
    "readOnlyCommitLogStorePaths": "a CommitLog outside storePathRootDir",
    "storePathCommitLog": "a CommitLog outside storePathRootDir",
    "storePathDLedgerCommitLog": "a DLedger log outside storePathRootDir",
    "transientStorePoolEnable": "the off-heap transient store pool",
    "useTLS": "TLS",
}
